import cluster from 'node:cluster';
import type { HoldfastConfig } from '../config/schema.js';
import { parseBusUrl } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions } from './bus.js';
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

/**
 * The bus `bus.url` names. Drivers for an engine load only when their URL is used, so a one-process
 * Holdfast never loads a Redis or NATS client.
 */
export async function createBus(config: HoldfastConfig, metrics: Metrics, log: Logger): Promise<Bus> {
  // With workers the node's bus is the primary's, whatever its engine: each worker reaches it over IPC
  // (cluster-hub.ts), so a node is one client of Redis or NATS however many workers it runs.
  if (cluster.isWorker) return clusterBus(config, metrics, log);
  return createEngineBus(config, metrics, log);
}

/** The bus `bus.url` names itself, for a process that is the whole node (no workers) or a cluster's primary. */
export async function createEngineBus(config: HoldfastConfig, metrics: Metrics, log: Logger): Promise<Bus & { readonly driver: HubEngine }> {
  const parsed = parseBusUrl(config.bus.url);
  const options = busOptions(config);
  if (parsed === null || parsed.driver === 'memory') return new MemoryBus(options, metrics);
  const deps = { url: parsed.url, prefix: config.bus.prefix, connectTimeoutMs: config.bus.connectTimeoutMs, requestTimeoutMs: config.bus.requestTimeoutMs, options, metrics, log };
  if (parsed.driver === 'redis') {
    const { RedisBus } = await import('./redis-bus.js');
    return new RedisBus(deps);
  }
  const { NatsBus } = await import('./nats-bus.js');
  return new NatsBus(deps);
}

function clusterBus(config: HoldfastConfig, metrics: Metrics, log: Logger): Bus {
  const { connectTimeoutMs, requestTimeoutMs } = config.bus;
  // The hub waits bus.requestTimeoutMs for the other workers' delivery counts (src/cluster/primary.ts);
  // the worker waits longer, so a slow worker costs the publisher a count, not the answer.
  return new ClusterBus({ port: processPort(), connectTimeoutMs, requestTimeoutMs: 2 * requestTimeoutMs, metrics, log });
}
