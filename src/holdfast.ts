import './proxy/undici-global-guard.js';
import type { DestinationStream } from 'pino';
import { isLoopback, parseHostPort, type HoldfastConfig } from './config/schema.js';
import { HTTP1_ENGINE_ENV } from './config/flags.js';
import { PublishAuth } from './control/publish-auth.js';
import { createBus } from './bus/create-bus.js';
import type { Bus } from './bus/bus.js';
import { PublishEndpoint } from './control/publish.js';
import { ControlServer } from './control/server.js';
import { DashboardFeed } from './control/dashboard-feed.js';
import { dashboardSource, registryMetrics } from './control/dashboard-snapshot.js';
import { GripSigner } from './grip/sig.js';
import { ChannelIndex } from './hold/channel-index.js';
import { GapEvent } from './hold/gap-event.js';
import type { HeldClient } from './hold/held-client.js';
import { HoldCounters } from './hold/hold-counters.js';
import { HoldFanOut } from './hold/fan-out.js';
import { HoldRegistry } from './hold/hold-registry.js';
import { HoldStart } from './hold/hold-start.js';
import { LinkFetcher } from './hold/links.js';
import { LinkFollower } from './hold/link-follower.js';
import { Replay } from './hold/replay.js';
import { clientConnectionCap } from './edge/fd-budget.js';
import { SendStallWatch } from './http/send-stall.js';
import { Edge } from './edge/server.js';
import { createLogger, type Logger } from './observe/log.js';
import { createMetrics, type Metrics } from './observe/metrics.js';
import { Forwarder } from './proxy/forwarder.js';
import { GroupSender } from './proxy/group-sender.js';
import { registerProxyGauges } from './proxy/proxy-gauges.js';
import { Routing } from './proxy/routing.js';
import type { HoldfastError } from './errors.js';

/** What a reload does not change: the listeners, edge limits and timeouts, logging and the push gateway. */
const RESTART_ONLY_KEYS = ['listen', 'h2c', 'control', 'limits', 'timeouts', 'log', 'grip', 'push', 'publish', 'bus', 'workers'] as const;
import { UpgradeRouter } from './ws/upgrade-router.js';
import { loadCertificates } from './edge/tls-certificates.js';
import { TlsListener } from './edge/tls-listener.js';

export interface StartOptions {
  /** Where logs go (tests pass a sink); stdout by default. */
  logDestination?: DestinationStream;
  /** Skip the process-wide default metrics (tests run many instances in one process). */
  defaultMetrics?: boolean;
  /** Reads the configuration again for a reload (SIGHUP, POST /reload): the same file, flags and environment. */
  loadConfig?: () => HoldfastConfig;
  /** Fields on every log line (a cluster worker's id and pid). */
  logBindings?: Record<string, unknown>;
  /**
   * In a cluster worker: `POST /reload` and `/metrics` on the control port (which any worker may receive)
   * answer for the whole machine, through the primary (src/cluster/worker.ts).
   */
  cluster?: ClusterControl;
}

/** What a cluster worker's control listener asks the primary for. */
export interface ClusterControl {
  /** Reloads every worker; resolves to the answer's text, rejects with the refusal (a ConfigError lists every bad key). */
  reloadAll(): Promise<string>;
  /** Every worker's metrics, aggregated, in the Prometheus text format. */
  metrics(): Promise<string>;
}

export interface RunningHoldfast {
  /** The configuration in force (the latest one applied by a reload). */
  readonly config: HoldfastConfig;
  readonly edge: Edge;
  readonly control: ControlServer;
  readonly forwarder: Forwarder;
  /** The groups and routes of the configuration in force. */
  readonly routing: Routing;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly bus: Bus;
  /** Every held client (the push gateway's registry). */
  readonly holds: HoldRegistry;
  readonly upgrades: UpgradeRouter;
  readonly publisher: PublishEndpoint;
  /** Where clients connect, after binding (port 0 resolved). */
  readonly address: { host: string; port: number };
  readonly controlAddress: { host: string; port: number };
  /** Where TLS clients connect (tls.listen), after binding; null without a TLS listener. */
  readonly tlsAddress: { host: string; port: number } | null;
  /**
   * Apply a new configuration's backends, groups, routes and upstream settings to new requests; requests in
   * flight finish on the old groups. Without an argument, reads it again through StartOptions.loadConfig.
   * A bad configuration throws its ConfigError and changes nothing.
   */
  reload(next?: HoldfastConfig): void;
  /**
   * Graceful: stop accepting, finish in flight within timeouts.drainMs, then close everything. Resolves to
   * the number of requests cut at the deadline (0 for a clean drain).
   */
  drain(): Promise<number>;
  /** Immediate: cut everything; resolves to the requests that were cut. */
  close(): Promise<number>;
}

/**
 * Whose numbers the dashboard shows. With workers each one's control listener answers for itself: the
 * connection the page's feed landed on decides which worker, and the page says so (/metrics has the sums).
 */
function dashboardScope(options: StartOptions): string {
  if (options.cluster === undefined) return 'this process';
  const worker = options.logBindings?.worker;
  return `worker ${typeof worker === 'number' ? worker : '?'} only (pid ${process.pid}); /metrics sums every worker`;
}

/** The composition root: wires config, logs, metrics, backends, the edge and the control listener. */
export async function startHoldfast(config: HoldfastConfig, options: StartOptions = {}): Promise<RunningHoldfast> {
  const rootLog = createLogger(config.log.level, options.logDestination);
  const log = options.logBindings === undefined ? rootLog : rootLog.child(options.logBindings);
  // Read first: a missing or mismatched certificate is a start-up error naming its file, before anything starts.
  const certificates = config.tls.listen === undefined ? null : loadCertificates(config.tls.certificates);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  // One sweep for every client connection whose sent data is not draining (nginx's send_timeout).
  const sendStall = new SendStallWatch(config.timeouts.sendStallMs, log);
  // Built in one order, each part given what it uses: nothing is assigned after construction.
  const signer = await GripSigner.create(config.grip.sigIss, config.grip.sigKey);
  const routing = new Routing(config, metrics, log);
  registerProxyGauges(metrics, routing);
  const sender = new GroupSender(metrics, log);
  // The push gateway, piece by piece: the fan-out (what the bus delivers to) writes to the clients of the
  // channel index; links go through the proxy's group path; replays read the bus's history; the registry
  // holds the clients; HoldStart takes over the proxied answers that carry GRIP instructions.
  const counters = new HoldCounters(metrics);
  const gapEvent = new GapEvent(config.push.sseGapEvent, counters);
  const index = new ChannelIndex<HeldClient>();
  const fanOut = new HoldFanOut(index, gapEvent, config.push.deliverSliceSize, log);
  const bus: Bus = await createBus(config, fanOut, metrics, log);
  try {
    await bus.start();
  } catch (err) {
    await Promise.all([bus.close(), routing.destroy()]);
    throw err;
  }
  const links = new LinkFollower(new LinkFetcher(routing, sender, signer), log, config.push.maxChannelsPerConnection);
  const replay = new Replay({ bus, metrics, log, gapEvent });
  const holds = new HoldRegistry({ config, metrics, index, bus, counters, links, replay, sendStall });
  const forwarder = new Forwarder({ routing, sender, signer, takeover: new HoldStart(holds, config), sendStall, metrics, log });
  const upgrades = new UpgradeRouter({ config, routing, sender, metrics, log, signer, holds, sendStall });
  const maxConnections = clientConnectionCap(config, log);
  metrics.clientConnectionsMax.set(maxConnections);
  // HOLDFAST_HTTP1_ENGINE=node-http serves HTTP/1 with Node's own server instead of the llhttp engine: for
  // comparing the two (bench/http-proxy-bench.mjs) and for ruling the engine out when chasing a problem.
  // Any other value is warned about at start (config/warnings.ts).
  const http1Engine = process.env[HTTP1_ENGINE_ENV] === 'node-http' ? 'node-http' : 'llhttp';
  const edge = new Edge({ config, forwarder, metrics, log, upgrades, maxConnections, http1Engine });
  const tls =
    certificates === null
      ? null
      : new TlsListener({ certificates, adopt: (socket) => edge.adopt(socket), handshakeTimeoutMs: config.timeouts.requestHeadMs, log, metrics });
  if (tls !== null) edge.serveAlso(tls.server);
  const { publish } = config;
  const auth = publish.key === undefined ? null : new PublishAuth(publish.key, publish.iss);
  const publisher = new PublishEndpoint({ config, bus, metrics, log, auth });
  let current = config;
  const reload = (next?: HoldfastConfig): void => {
    let applied: HoldfastConfig;
    try {
      applied = next ?? (options.loadConfig ?? (() => current))();
      // Certificates are re-read from their files (renewed ones take effect); a bad one refuses the reload.
      const renewed = tls !== null && applied.tls.listen !== undefined ? loadCertificates(applied.tls.certificates) : null;
      routing.reload(applied);
      if (renewed !== null) tls!.reload(renewed);
    } catch (err) {
      metrics.reloadsTotal.inc({ outcome: 'refused' });
      log.error({ code: (err as HoldfastError).code, err: (err as Error).message }, 'config reload refused, the running one stays');
      throw err;
    }
    metrics.reloadsTotal.inc({ outcome: 'applied' });
    const restartOnly: string[] = RESTART_ONLY_KEYS.filter((key) => JSON.stringify(applied[key]) !== JSON.stringify(current[key]));
    if (applied.tls.listen !== current.tls.listen) restartOnly.push('tls.listen');
    if (restartOnly.length > 0) log.warn({ keys: restartOnly }, 'these settings changed but apply only after a restart');
    current = applied;
  };
  const control = new ControlServer({
    metrics,
    publish: publisher,
    readiness: () => (edge.draining ? 'draining' : bus.state === 'up' ? 'ready' : `bus ${bus.state}`),
    reload: options.cluster === undefined ? reload : options.cluster.reloadAll.bind(options.cluster),
    ...(options.cluster === undefined ? {} : { metricsText: options.cluster.metrics.bind(options.cluster) }),
    timeouts: config.timeouts,
    auth,
    openReads: isLoopback(parseHostPort(config.control)!.host) || publish.openReadEndpoints,
    dashboard: new DashboardFeed({
      snapshot: dashboardSource({ readMetrics: registryMetrics(metrics.registry), channels: holds.index, bus, scope: dashboardScope(options) }),
    }),
  });

  const listenAt = parseHostPort(config.listen)!;
  const controlAt = parseHostPort(config.control)!;
  let address: { host: string; port: number };
  let controlAddress: { host: string; port: number };
  let tlsAddress: { host: string; port: number } | null = null;
  try {
    address = await edge.listen(listenAt.host, listenAt.port);
    if (tls !== null) {
      const tlsAt = parseHostPort(config.tls.listen!)!;
      tlsAddress = await tls.listen(tlsAt.host, tlsAt.port);
    }
    controlAddress = await control.listen(controlAt.host, controlAt.port);
  } catch (err) {
    edge.server.close();
    tls?.server.close();
    control.server.close();
    await routing.destroy();
    throw err;
  }
  log.info({ listen: address, ...(tlsAddress === null ? {} : { tlsListen: tlsAddress }), control: controlAddress, backends: config.backends, maxConnections }, 'holdfast started');

  let stopping: Promise<number> | null = null;
  return {
    get config() {
      return current;
    },
    edge,
    control,
    forwarder,
    routing,
    metrics,
    log,
    bus,
    holds,
    upgrades,
    publisher,
    address,
    controlAddress,
    tlsAddress,
    reload,
    drain() {
      stopping ??= (async () => {
        log.info({ deadlineMs: config.timeouts.drainMs }, 'draining');
        edge.draining = true;
        holds.drain();
        // WebSockets: terminated sockets tell their backend and close with 1001 now, tunnels at the deadline.
        const [cut] = await Promise.all([edge.drain(config.timeouts.drainMs), upgrades.drain(config.timeouts.drainMs)]);
        await bus.close();
        await routing.close();
        await control.close();
        sendStall.stop();
        if (cut > 0) log.warn({ cutRequests: cut }, 'drained, but requests were cut at the deadline');
        else log.info('drained');
        return cut;
      })();
      return stopping;
    },
    close() {
      stopping ??= (async () => {
        edge.draining = true;
        holds.drain();
        upgrades.closeAll();
        edge.server.close();
        tls?.server.close();
        edge.server.closeAllConnections();
        const [, , cut] = await Promise.all([routing.destroy(), control.close(), edge.drain(0), bus.close()]);
        sendStall.stop();
        return cut;
      })();
      return stopping;
    },
  };
}
