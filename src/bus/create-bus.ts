import type { HoldfastConfig } from '../config/schema.js';
import { parseBusUrl } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { Bus, BusOptions } from './bus.js';
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
  const parsed = parseBusUrl(config.bus.url);
  const options = busOptions(config);
  if (parsed === null || parsed.driver === 'memory') return new MemoryBus(options, metrics);
  const deps = { url: parsed.url, prefix: config.bus.prefix, connectTimeoutMs: config.bus.connectTimeoutMs, requestTimeoutMs: config.bus.requestTimeoutMs, options, metrics, log };
  if (parsed.driver === 'nats') {
    const { NatsBus } = await import('./nats-bus.js');
    return new NatsBus(deps);
  }
  throw new Error(`bus driver ${parsed.driver} is not built yet`);
}
