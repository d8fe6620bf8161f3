import type { DestinationStream } from 'pino';
import { parseHostPort, type HoldfastConfig } from './config/schema.js';
import { ControlServer } from './control/server.js';
import { Edge } from './edge/server.js';
import { createLogger, type Logger } from './observe/log.js';
import { createMetrics, type Metrics } from './observe/metrics.js';
import { Forwarder } from './proxy/forwarder.js';

export interface StartOptions {
  /** Where logs go (tests pass a sink); stdout by default. */
  logDestination?: DestinationStream;
  /** Skip the process-wide default metrics (tests run many instances in one process). */
  defaultMetrics?: boolean;
}

export interface RunningHoldfast {
  readonly config: HoldfastConfig;
  readonly edge: Edge;
  readonly control: ControlServer;
  readonly forwarder: Forwarder;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Where clients connect, after binding (port 0 resolved). */
  readonly address: { host: string; port: number };
  readonly controlAddress: { host: string; port: number };
  /** Graceful: stop accepting, finish in flight within timeouts.drainMs, then close everything. */
  drain(): Promise<void>;
  /** Immediate: cut everything. */
  close(): Promise<void>;
}

/** The composition root: wires config, logs, metrics, backends, the edge and the control listener. */
export async function startHoldfast(config: HoldfastConfig, options: StartOptions = {}): Promise<RunningHoldfast> {
  const log = createLogger(config.log.level, options.logDestination);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const forwarder = new Forwarder(config, metrics, log);
  const edge = new Edge({ config, forwarder, metrics, log });
  const control = new ControlServer({ metrics, isReady: () => !edge.draining });

  const listenAt = parseHostPort(config.listen)!;
  const controlAt = parseHostPort(config.control)!;
  let address: { host: string; port: number };
  let controlAddress: { host: string; port: number };
  try {
    address = await edge.listen(listenAt.host, listenAt.port);
    controlAddress = await control.listen(controlAt.host, controlAt.port);
  } catch (err) {
    edge.server.close();
    control.server.close();
    await forwarder.destroy();
    throw err;
  }
  log.info({ listen: address, control: controlAddress, backends: config.backends }, 'holdfast started');

  let stopping: Promise<void> | null = null;
  return {
    config,
    edge,
    control,
    forwarder,
    metrics,
    log,
    address,
    controlAddress,
    drain() {
      stopping ??= (async () => {
        log.info({ deadlineMs: config.timeouts.drainMs }, 'draining');
        await edge.drain(config.timeouts.drainMs);
        await forwarder.close();
        await control.close();
        log.info('drained');
      })();
      return stopping;
    },
    close() {
      stopping ??= (async () => {
        edge.draining = true;
        edge.server.close();
        edge.server.closeAllConnections();
        await Promise.all([forwarder.destroy(), control.close(), edge.drain(0)]);
      })();
      return stopping;
    },
  };
}
