import { E, HoldfastError } from '../errors.js';
import { SUPPORTED_FILTERS } from '../grip/instruct.js';

/**
 * GRIP control messages a backend sends over WebSocket as `c:{json}` (Pushpin's
 * src/handler/wscontrolmessage.cpp). `send-delayed` and `flush-delayed` are not supported and refused.
 */
export type ControlMessage =
  | { type: 'subscribe'; channel: string; filters: string[] }
  | { type: 'unsubscribe'; channel: string }
  | { type: 'detach' }
  | { type: 'session'; id: string }
  | { type: 'set-meta'; name: string; value: string }
  | {
      type: 'keep-alive';
      messageType: 'text' | 'binary' | 'ping' | 'pong';
      /** null turns the keep-alive off. */
      content: Buffer | null;
      timeoutSec: number;
      mode: 'idle' | 'interval';
    };

export class ControlMessageError extends HoldfastError {
  constructor(message: string) {
    super(E.WS_CONTROL, `invalid GRIP control message: ${message}`);
  }
}

const MAX_FILTERS = 8;
const MESSAGE_TYPES = new Set(['text', 'binary', 'ping', 'pong']);

export function parseControlMessage(json: Buffer): ControlMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(json.toString('utf8'));
  } catch {
    throw new ControlMessageError('not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ControlMessageError('not an object');
  const o = doc as Record<string, unknown>;
  switch (o.type) {
    case 'subscribe': {
      const channel = requireString(o, 'channel');
      const filters: string[] = [];
      if (o.filters !== undefined) {
        if (!Array.isArray(o.filters) || o.filters.length > MAX_FILTERS) throw new ControlMessageError(`'filters' must be a list of at most ${MAX_FILTERS}`);
        for (const f of o.filters) {
          if (typeof f !== 'string' || !SUPPORTED_FILTERS.has(f)) throw new ControlMessageError(`unknown filter ${JSON.stringify(f)}`);
          filters.push(f);
        }
      }
      return { type: 'subscribe', channel, filters };
    }
    case 'unsubscribe':
      return { type: 'unsubscribe', channel: requireString(o, 'channel') };
    case 'detach':
      return { type: 'detach' };
    case 'session':
      return { type: 'session', id: optionalString(o, 'id') ?? '' };
    case 'set-meta':
      return { type: 'set-meta', name: requireString(o, 'name').toLowerCase(), value: optionalString(o, 'value') ?? '' };
    case 'keep-alive': {
      const messageType = optionalString(o, 'message-type') ?? (o['content-bin'] !== undefined ? 'binary' : 'text');
      if (!MESSAGE_TYPES.has(messageType)) throw new ControlMessageError(`unknown message-type "${messageType}"`);
      let content: Buffer | null = null;
      if (o['content-bin'] !== undefined) {
        if (typeof o['content-bin'] !== 'string') throw new ControlMessageError("'content-bin' must be base64");
        content = Buffer.from(o['content-bin'], 'base64');
      } else if (o.content !== undefined) {
        if (typeof o.content !== 'string') throw new ControlMessageError("'content' must be a string");
        content = Buffer.from(o.content, 'utf8');
      }
      let timeoutSec = 0;
      if (content !== null) {
        // Pushpin's default keep-alive period.
        timeoutSec = o.timeout === undefined ? 55 : Number(o.timeout);
        if (!Number.isInteger(timeoutSec) || timeoutSec < 0) throw new ControlMessageError("'timeout' must be whole seconds");
      }
      const mode = optionalString(o, 'mode') ?? 'idle';
      if (mode !== 'idle' && mode !== 'interval') throw new ControlMessageError(`unknown keep-alive mode "${mode}"`);
      return { type: 'keep-alive', messageType: messageType as 'text', content, timeoutSec, mode };
    }
    default:
      throw new ControlMessageError(`unknown type ${JSON.stringify(o.type)}`);
  }
}

function requireString(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new ControlMessageError(`'${key}' must be a non-empty string`);
  return v;
}

function optionalString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ControlMessageError(`'${key}' must be a string`);
  return v;
}
