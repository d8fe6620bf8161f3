import type { PublishItem } from '../grip/publish-items.js';

/**
 * A published item as the engines carry it (Redis Pub/Sub and Streams, NATS and JetStream): JSON with every
 * Buffer as base64, so binary content survives and the engine's own tools (`redis-cli`, `nats`) still show
 * channel, id and format names in clear. Validated items only (the publish endpoint parsed them), which have
 * no nulls: null on the wire is a field present but unset.
 */

export function encodeItem(item: PublishItem): string {
  return JSON.stringify(item, (_key, value: unknown): unknown => {
    // JSON.stringify calls a Buffer's toJSON before the replacer sees it: {type:'Buffer',data:[...]}.
    if (isBufferJson(value)) return { b64: Buffer.from(value.data).toString('base64') };
    // A validated item has no nulls: null stands for a field that is present but unset, so it comes back.
    return value === undefined ? null : value;
  });
}

/** Throws on text that is not an encoded item (a foreign or corrupt message in the engine). */
export function decodeItem(text: string): PublishItem {
  const raw = JSON.parse(text, (_key, value: unknown): unknown => {
    if (isB64(value)) return Buffer.from(value.b64, 'base64');
    // A reviver that returns undefined deletes the key; present-but-unset fields are restored below.
    if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
      for (const [k, v] of Object.entries(value)) if (v === null) (value as Record<string, unknown>)[k] = undefined;
    }
    return value;
  }) as Partial<PublishItem> | null;
  if (raw === null || typeof raw !== 'object' || typeof raw.channel !== 'string' || typeof raw.formats !== 'object') {
    throw new Error('not a Holdfast bus item');
  }
  return {
    channel: raw.channel,
    id: typeof raw.id === 'string' ? raw.id : undefined,
    prevId: typeof raw.prevId === 'string' ? raw.prevId : undefined,
    formats: raw.formats,
    meta: raw.meta ?? {},
    noSeq: raw.noSeq === true,
  };
}

function isBufferJson(value: unknown): value is { type: 'Buffer'; data: number[] } {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data);
}

function isB64(value: unknown): value is { b64: string } {
  return typeof value === 'object' && value !== null && typeof (value as { b64?: unknown }).b64 === 'string' && Object.keys(value).length === 1;
}
