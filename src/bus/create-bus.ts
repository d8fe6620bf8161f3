import cluster from 'node:cluster';
import type { HoldfastConfig } from '../config/schema.js';
import { parseBusUrl } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions, BusSink } from './bus.js';
import { ClusterBus } from './cluster-bus.js';
import { processPort, type HubEngine } from './cluster-messages.js';
import { MemoryBus } from './memory-bus.js';

export function busOptions(config: HoldfastConfig): BusOptions {
  const { push } = config;
  return {
    maxItems: push.historyMaxItems,
    maxAgeMs: push.historyMaxAgeMs,
    sequenceWaitMs: push.sequenceWaitMs,
    sequenceMaxPending: push.sequenceMaxPending,
    dedupWindowMs: push.dedupWindowMs,
  };
}

/** Builds the bus `bus.url` names around the sink it delivers to (its driver already loaded). */
export type EngineFactory = (sink: BusSink) => Bus & { readonly driver: HubEngine };

/** The node's bus, delivering to `sink`: the primary's over IPC in a cluster worker, else the engine itself. */
export async function createBus(config: HoldfastConfig, sink: BusSink, metrics: Metrics, log: Logger): Promise<Bus> {
  // With workers the node's bus is the primary's, whatever its engine: each worker reaches it over IPC
  // (cluster-hub.ts), so a node is one client of Redis or NATS however many workers it runs.
  if (cluster.isWorker) return clusterBus(config, sink, metrics, log);
  return (await loadEngineBus(config, metrics, log))(sink);
}

/**
 * The bus `bus.url` names itself, for a process that is the whole node (no workers) or a cluster's primary.
 * Drivers for an engine load only when their URL is used, so a one-process Holdfast never loads a Redis or
 * NATS client; what is loaded is a factory, so the bus is built with its sink (ClusterHub builds its own).
 */
export async function loadEngineBus(config: HoldfastConfig, metrics: Metrics, log: Logger): Promise<EngineFactory> {
  const parsed = parseBusUrl(config.bus.url);
  const options = busOptions(config);
  if (parsed === null || parsed.driver === 'memory') return (sink) => new MemoryBus(options, sink, metrics);
  const deps = { url: parsed.url, prefix: config.bus.prefix, connectTimeoutMs: config.bus.connectTimeoutMs, requestTimeoutMs: config.bus.requestTimeoutMs, options, metrics, log };
  if (parsed.driver === 'redis') {
    const { RedisBus } = await import('./redis-bus.js');
    return (sink) => new RedisBus({ ...deps, sink });
  }
  const { NatsBus } = await import('./nats-bus.js');
  return (sink) => new NatsBus({ ...deps, sink });
}

function clusterBus(config: HoldfastConfig, sink: BusSink, metrics: Metrics, log: Logger): Bus {
  const { connectTimeoutMs, requestTimeoutMs } = config.bus;
  // The hub waits bus.requestTimeoutMs for the other workers' delivery counts (src/cluster/primary.ts);
  // the worker waits longer, so a slow worker costs the publisher a count, not the answer.
  return new ClusterBus({ port: processPort(), connectTimeoutMs, requestTimeoutMs: 2 * requestTimeoutMs, sink, metrics, log });
}
