import { E, HoldfastError } from '../errors.js';

/**
 * The `application/websocket-events` body of WebSocket-over-HTTP (GRIP.md §4; Pushpin's
 * src/proxy/websocketoverhttp.cpp): events `TYPE SP hexlen CRLF bytes CRLF`, or `TYPE CRLF` without content.
 */
export type WsEventType = 'OPEN' | 'TEXT' | 'BINARY' | 'PING' | 'PONG' | 'CLOSE' | 'DISCONNECT';

export interface WsEvent {
  type: WsEventType;
  /** null for an event without content (`TYPE CRLF`). */
  content: Buffer | null;
}

export const WEBSOCKET_EVENTS = 'application/websocket-events';

const TYPES: ReadonlySet<string> = new Set(['OPEN', 'TEXT', 'BINARY', 'PING', 'PONG', 'CLOSE', 'DISCONNECT']);
/** Longest type line we read: the longest type, a space and 8 hex digits (our bodies are capped far below 4 GiB). */
const MAX_TYPE_LINE = 'DISCONNECT'.length + 1 + 8;

export class WsEventsError extends HoldfastError {
  constructor(message: string) {
    super(E.WS_EVENTS, `invalid application/websocket-events body from the backend: ${message}`);
  }
}

/** The bytes of one body. */
export function encodeEvents(events: readonly WsEvent[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of events) {
    if (e.content === null) {
      parts.push(Buffer.from(`${e.type}\r\n`, 'latin1'));
    } else {
      parts.push(Buffer.from(`${e.type} ${e.content.length.toString(16)}\r\n`, 'latin1'), e.content, CRLF);
    }
  }
  return Buffer.concat(parts);
}

const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * Parses a whole body. Stricter than Pushpin where being lax would hide a broken backend: an unknown type, a
 * bad length, content cut short or a missing CRLF after content is an error, never a guess.
 */
export function decodeEvents(body: Buffer): WsEvent[] {
  const out: WsEvent[] = [];
  let pos = 0;
  while (pos < body.length) {
    const eol = body.indexOf(CRLF, pos);
    if (eol < 0 || eol - pos > MAX_TYPE_LINE) throw new WsEventsError(`event at byte ${pos} has no CRLF-terminated type line`);
    const line = body.toString('latin1', pos, eol);
    pos = eol + 2;
    const space = line.indexOf(' ');
    const type = space < 0 ? line : line.slice(0, space);
    if (!TYPES.has(type)) throw new WsEventsError(`unknown event type "${type.slice(0, 16)}"`);
    if (space < 0) {
      out.push({ type: type as WsEventType, content: null });
      continue;
    }
    const hex = line.slice(space + 1);
    if (!/^[0-9A-Fa-f]{1,8}$/.test(hex)) throw new WsEventsError(`${type} has a bad content length "${hex.slice(0, 16)}"`);
    const length = parseInt(hex, 16);
    if (pos + length + 2 > body.length) throw new WsEventsError(`${type} content of ${length} bytes is cut short`);
    if (body[pos + length] !== 13 || body[pos + length + 1] !== 10) {
      throw new WsEventsError(`${type} content is not followed by CRLF`);
    }
    out.push({ type: type as WsEventType, content: body.subarray(pos, pos + length) });
    pos += length + 2;
  }
  return out;
}

/** The content of a CLOSE event: 2-byte big-endian code, then the reason. */
export function closeContent(code: number, reason: string): Buffer {
  const reasonBytes = Buffer.from(reason, 'utf8');
  const out = Buffer.allocUnsafe(2 + reasonBytes.length);
  out.writeUInt16BE(code, 0);
  reasonBytes.copy(out, 2);
  return out;
}

/** Code and reason of a CLOSE event; code undefined when it carried none. */
export function parseCloseContent(content: Buffer | null): { code: number | undefined; reason: string } {
  if (content === null || content.length < 2) return { code: undefined, reason: '' };
  return { code: content.readUInt16BE(0), reason: content.toString('utf8', 2) };
}

/**
 * RFC 6455 §7.4: the codes an endpoint may send in a close frame. Anything else from a backend (js-grip's
 * `close()` sends 0 by default) becomes 1000: a protocol error at the client for the backend's sloppiness
 * would be the wrong answer.
 */
export function sendableCloseCode(code: number | undefined): number {
  if (code === undefined) return 1000;
  if (code >= 3000 && code <= 4999) return code;
  if (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) return code;
  return 1000;
}
