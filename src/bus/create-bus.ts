import cluster from 'node:cluster';
import type { HoldfastConfig } from '../config/schema.js';
import { parseBusUrl } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions, BusSink } from './bus.js';
import { ClusterBus } from './cluster-bus.js';
import { processPort } from './cluster-messages.js';
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

/**
 * The bus `bus.url` names. Drivers for an engine load only when their URL is used, so a one-process
 * Holdfast never loads a Redis or NATS client. What arrives for this node's channels goes to `sink`.
 */
export async function createBus(config: HoldfastConfig, sink: BusSink, metrics: Metrics, log: Logger): Promise<Bus> {
  const parsed = parseBusUrl(config.bus.url);
  const options = busOptions(config);
  if (parsed === null || parsed.driver === 'memory') {
    // With workers, `memory` is the primary's memory: each worker reaches it over IPC (src/cluster/).
    if (cluster.isWorker) return clusterBus(config, sink, metrics, log);
    return new MemoryBus(options, sink, metrics);
  }
  const deps = { url: parsed.url, prefix: config.bus.prefix, connectTimeoutMs: config.bus.connectTimeoutMs, requestTimeoutMs: config.bus.requestTimeoutMs, options, sink, metrics, log };
  if (parsed.driver === 'redis') {
    const { RedisBus } = await import('./redis-bus.js');
    return new RedisBus(deps);
  }
  const { NatsBus } = await import('./nats-bus.js');
  return new NatsBus(deps);
}

function clusterBus(config: HoldfastConfig, sink: BusSink, metrics: Metrics, log: Logger): Bus {
  const { connectTimeoutMs, requestTimeoutMs } = config.bus;
  // The hub waits bus.requestTimeoutMs for the other workers' delivery counts (src/cluster/primary.ts);
  // the worker waits longer, so a slow worker costs the publisher a count, not the answer.
  return new ClusterBus({ port: processPort(), connectTimeoutMs, requestTimeoutMs: 2 * requestTimeoutMs, sink, metrics, log });
}
