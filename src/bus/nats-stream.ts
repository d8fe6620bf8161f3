import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { BusDriverDeps } from './bus.js';

const NS_PER_MS = 1_000_000;

/**
 * The one JetStream stream that holds every channel's history for a prefix: `<prefix>.h.>`, at most
 * maxItems per channel (at least 1: the last item is what prev-id sequencing checks against), maxAgeMs old,
 * de-duplicated by Nats-Msg-Id within dedupWindowMs, on file so it survives a NATS restart, with direct
 * gets on (reads that need no consumer; nats-server 2.9+).
 */
export function historyStreamConfig(name: string, deps: Pick<BusDriverDeps, 'prefix' | 'options'>): Partial<StreamConfig> & { name: string } {
  const { maxItems, maxAgeMs, dedupWindowMs } = deps.options;
  return {
    name,
    subjects: [`${deps.prefix}.h.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_msgs_per_subject: Math.max(1, maxItems),
    max_age: maxAgeMs * NS_PER_MS,
    // JetStream refuses a window longer than max_age; 0 would mean its 2-minute default, and with
    // dedupWindowMs 0 no message carries an id anyway.
    duplicate_window: Math.max(1, Math.min(dedupWindowMs === 0 ? 1_000 : dedupWindowMs, maxAgeMs)) * NS_PER_MS,
    allow_direct: true,
    num_replicas: 1,
  };
}

/** Creates the stream, or brings an existing one to these limits (and says so: another config changed them). */
export async function ensureHistoryStream(jsm: JetStreamManager, name: string, deps: Pick<BusDriverDeps, 'prefix' | 'options' | 'log'>): Promise<void> {
  const wanted = historyStreamConfig(name, deps);
  let existing;
  try {
    existing = (await jsm.streams.info(name)).config;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    try {
      await jsm.streams.add(wanted);
      deps.log.info({ stream: name }, 'nats bus: created the history stream');
      return;
    } catch (addErr) {
      // Another node created it at the same moment: fall through and compare with what it made.
      const made = await jsm.streams.info(name).catch(() => null);
      if (made === null) throw addErr;
      existing = made.config;
    }
  }
  const keys = ['max_msgs_per_subject', 'max_age', 'duplicate_window', 'allow_direct'] as const;
  const changed = keys.filter((k) => existing[k] !== wanted[k]);
  if (existing.subjects.join() !== wanted.subjects!.join()) changed.push('subjects' as never);
  if (changed.length === 0) return;
  const from = Object.fromEntries(changed.map((k) => [k, existing[k as keyof typeof existing]]));
  const to = Object.fromEntries(changed.map((k) => [k, wanted[k as keyof typeof wanted]]));
  deps.log.warn({ stream: name, from, to }, 'nats bus: the history stream had other limits; updating it to this configuration');
  const { name: _name, storage: _storage, retention: _retention, ...update } = wanted;
  await jsm.streams.update(name, update);
}
