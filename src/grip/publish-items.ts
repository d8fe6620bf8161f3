import { E, HoldfastError } from '../errors.js';
import { isWritableText } from '../http/headers.js';
import { GripInstructError, contentOf, jsonHeaders } from './instruct.js';

export interface HttpResponseFormat {
  action: 'send' | 'hint';
  code: number | undefined;
  reason: string | undefined;
  /** Flat list; published headers override the hold's headers of the same name. */
  headers: string[] | undefined;
  body: Buffer | undefined;
}

export interface HttpStreamFormat {
  action: 'send' | 'hint' | 'close';
  content: Buffer | undefined;
}

export interface WsMessageFormat {
  action: 'send' | 'close' | 'refresh';
  type: 'text' | 'binary' | 'ping' | 'pong';
  content: Buffer | undefined;
  code: number | undefined;
  reason: string | undefined;
}

export interface PublishFormats {
  'http-response'?: HttpResponseFormat;
  'http-stream'?: HttpStreamFormat;
  'ws-message'?: WsMessageFormat;
}

/** One item of a publish request (GRIP.md §3), validated. */
export interface PublishItem {
  channel: string;
  id: string | undefined;
  prevId: string | undefined;
  formats: PublishFormats;
  meta: Record<string, string>;
  /** Skip sequencing (prev-id waits) for this item. */
  noSeq: boolean;
}

export class PublishError extends HoldfastError {}

export interface PublishLimits {
  maxMessageBytes: number;
}

type Json = Record<string, unknown>;

/** Parses `{"items": [...]}`; throws PublishError naming the item and field at fault. */
export function parsePublishBody(text: string, limits: PublishLimits): PublishItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new PublishError(E.PUBLISH_JSON, 'body is not valid JSON');
  }
  if (!isObject(doc) || !Array.isArray(doc.items)) {
    throw new PublishError(E.PUBLISH_ITEMS, "body must be an object with an 'items' list");
  }
  return doc.items.map((raw, index) => {
    try {
      return parseItem(raw, limits);
    } catch (err) {
      if (err instanceof GripInstructError || err instanceof PublishError) {
        const reason = err.message.replace(/^invalid GRIP instruction from the backend: /, '');
        throw new PublishError(
          err instanceof PublishError ? err.def : E.PUBLISH_ITEM,
          `item ${index}: ${reason}`,
        );
      }
      throw err;
    }
  });
}

function parseItem(raw: unknown, limits: PublishLimits): PublishItem {
  if (!isObject(raw)) throw itemError('must be an object');
  if (typeof raw.channel !== 'string' || raw.channel === '') throw itemError("'channel' must be a non-empty string");
  const id = optionalString(raw, 'id');
  const prevId = optionalString(raw, 'prev-id');
  const formatsSource = raw.formats === undefined ? raw : raw.formats;
  if (!isObject(formatsSource)) throw itemError("'formats' must be an object");
  const formats: PublishFormats = {};
  let size = 0;
  if (formatsSource['http-response'] !== undefined) {
    const f = parseHttpResponse(formatsSource['http-response']);
    size = Math.max(size, f.body?.length ?? 0);
    formats['http-response'] = f;
  }
  if (formatsSource['http-stream'] !== undefined) {
    const f = parseHttpStream(formatsSource['http-stream']);
    size = Math.max(size, f.content?.length ?? 0);
    formats['http-stream'] = f;
  }
  if (formatsSource['ws-message'] !== undefined) {
    const f = parseWsMessage(formatsSource['ws-message']);
    size = Math.max(size, f.content?.length ?? 0);
    formats['ws-message'] = f;
  }
  if (Object.keys(formats).length === 0) {
    throw itemError("needs at least one format: 'http-response', 'http-stream' or 'ws-message'");
  }
  if (size > limits.maxMessageBytes) {
    throw new PublishError(
      E.PUBLISH_MESSAGE_TOO_LARGE,
      `message of ${size} bytes exceeds publish.maxMessageBytes (${limits.maxMessageBytes})`,
    );
  }
  const meta: Record<string, string> = {};
  if (raw.meta !== undefined) {
    if (!isObject(raw.meta)) throw itemError("'meta' must be an object of strings");
    for (const [k, v] of Object.entries(raw.meta)) {
      if (typeof v !== 'string') throw itemError(`meta '${k}' must be a string`);
      meta[k] = v;
    }
  }
  if (raw['no-seq'] !== undefined && typeof raw['no-seq'] !== 'boolean') throw itemError("'no-seq' must be a boolean");
  return { channel: raw.channel, id, prevId, formats, meta, noSeq: raw['no-seq'] === true };
}

function parseHttpResponse(raw: unknown): HttpResponseFormat {
  if (!isObject(raw)) throw itemError("'http-response' must be an object");
  const action = raw.action ?? 'send';
  if (action !== 'send' && action !== 'hint') throw itemError("http-response 'action' must be send or hint");
  let code: number | undefined;
  if (raw.code !== undefined) {
    code = typeof raw.code === 'string' && /^\d+$/.test(raw.code) ? Number(raw.code) : (raw.code as number);
    // A 1xx is interim: a long-poll client would read "100 Continue" and take its next answer as this one.
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 200 || code > 999) {
      throw itemError("http-response 'code' must be a final status code (200-999)");
    }
  }
  if (raw.reason !== undefined && typeof raw.reason !== 'string') throw itemError("http-response 'reason' must be a string");
  if (raw.reason !== undefined && !isWritableText(raw.reason)) throw itemError("http-response 'reason' contains a control character");
  return {
    action,
    code,
    reason: raw.reason,
    headers: raw.headers === undefined ? undefined : jsonHeaders(raw.headers, 'http-response'),
    body: contentOf(raw, 'body', 'http-response'),
  };
}

function parseHttpStream(raw: unknown): HttpStreamFormat {
  if (!isObject(raw)) throw itemError("'http-stream' must be an object");
  const action = raw.action ?? 'send';
  if (action !== 'send' && action !== 'hint' && action !== 'close') {
    throw itemError("http-stream 'action' must be send, hint or close");
  }
  const content = contentOf(raw, 'content', 'http-stream');
  if (action === 'send' && content === undefined) throw itemError("http-stream needs 'content' or 'content-bin'");
  return { action, content };
}

function parseWsMessage(raw: unknown): WsMessageFormat {
  if (!isObject(raw)) throw itemError("'ws-message' must be an object");
  const action = raw.action ?? 'send';
  if (action !== 'send' && action !== 'close' && action !== 'refresh') {
    throw itemError("ws-message 'action' must be send, close or refresh");
  }
  const content = contentOf(raw, 'content', 'ws-message');
  const defaultType = raw['content-bin'] !== undefined ? 'binary' : 'text';
  const type = raw.type ?? defaultType;
  if (type !== 'text' && type !== 'binary' && type !== 'ping' && type !== 'pong') {
    throw itemError("ws-message 'type' must be text, binary, ping or pong");
  }
  if (action === 'send' && content === undefined && type !== 'ping' && type !== 'pong') {
    throw itemError("ws-message needs 'content' or 'content-bin'");
  }
  let code: number | undefined;
  if (raw.code !== undefined) {
    code = typeof raw.code === 'string' && /^\d+$/.test(raw.code) ? Number(raw.code) : (raw.code as number);
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 4999) {
      throw itemError("ws-message 'code' must be a close code");
    }
  }
  if (raw.reason !== undefined && typeof raw.reason !== 'string') throw itemError("ws-message 'reason' must be a string");
  return { action, type, content, code, reason: raw.reason };
}

function optionalString(raw: Json, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') throw itemError(`'${key}' must be a string`);
  return v;
}

function itemError(message: string): PublishError {
  return new PublishError(E.PUBLISH_ITEM, message);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
