import { E, HoldfastError } from '../errors.js';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { isWritableText } from '../http/headers.js';
import { param, parseHeaderItems } from './header-params.js';

/** What a held client subscribes to. */
export interface ChannelSubscription {
  name: string;
  prevId: string | undefined;
  filters: string[];
}

export interface KeepAlive {
  data: Buffer;
  timeoutSec: number;
  mode: 'idle' | 'interval';
}

/** A response as GRIP carries it: the client's status line, headers (flat list) and body. */
export interface GripResponse {
  code: number;
  reason: string;
  headers: string[];
  body: Buffer;
}

export interface Instruct {
  hold: 'response' | 'stream' | null;
  channels: ChannelSubscription[];
  /** Long-poll: seconds until the client gets `response`. */
  timeoutSec: number;
  keepAlive: KeepAlive | null;
  meta: Record<string, string>;
  /** What the client gets first (stream) or on timeout (response hold). */
  response: GripResponse;
  nextLink: { url: string; timeoutSec: number } | null;
  goneLink: string | null;
}

/** Pushpin's numbers (src/handler/instruct.cpp, handlerengine.cpp). */
export const DEFAULT_HOLD_TIMEOUT_SEC = 55;
export const MIN_HOLD_TIMEOUT_SEC = 5;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_SEC = 55;
export const DEFAULT_NEXT_LINK_TIMEOUT_SEC = 120;
const MAX_FILTERS_PER_CHANNEL = 8;
/** The message filters Holdfast implements (Pushpin's names). */
export const SUPPORTED_FILTERS: ReadonlySet<string> = new Set(['skip-self', 'skip-users', 'require-sub']);

export class GripInstructError extends HoldfastError {
  constructor(message: string) {
    super(E.GRIP_INSTRUCT, `invalid GRIP instruction from the backend: ${message}`);
  }
}

/** Any `Grip-*` header or an `application/grip-instruct` body makes a backend response an instruction. */
export function isGripResponse(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    // Checked on every proxied response: test the first byte before lower-casing anything.
    const first = name.charCodeAt(0) | 0x20;
    if (first === 0x67 /* g */ && name.length > 5 && name.slice(0, 5).toLowerCase() === 'grip-') return true;
    if (first === 0x63 /* c */ && name.length === 12 && name.toLowerCase() === 'content-type') {
      const ct = headers[i + 1]!;
      if (ct.length >= 25 && ct.slice(0, 25).toLowerCase() === 'application/grip-instruct') return true;
    }
  }
  return false;
}

export function isJsonInstruct(headers: readonly string[]): boolean {
  const ct = headerValue(headers, 'content-type');
  return ct !== undefined && ct.split(';')[0]!.trim().toLowerCase() === 'application/grip-instruct';
}

/**
 * Reads GRIP instructions from a backend response: headers always, the JSON body for
 * `application/grip-instruct`. `headers` are the backend's fields (hop-by-hop already removed).
 * Throws GripInstructError naming what is wrong.
 */
export function parseInstruct(code: number, reason: string, headers: readonly string[], body: Buffer): Instruct {
  const instruct: Instruct = {
    hold: null,
    channels: [],
    timeoutSec: DEFAULT_HOLD_TIMEOUT_SEC,
    keepAlive: null,
    meta: {},
    response: { code, reason, headers: [], body },
    nextLink: null,
    goneLink: null,
  };

  const hold = headerValue(headers, 'grip-hold');
  if (hold !== undefined) {
    if (hold !== 'response' && hold !== 'stream') throw new GripInstructError("Grip-Hold must be 'response' or 'stream'");
    instruct.hold = hold;
  }
  for (const value of headerValues(headers, 'grip-channel')) {
    // An empty value names no channel (Pushpin splits it into nothing). serve-grip sends `Grip-Channel:` empty
    // whenever startInstruct() was called without channels, e.g. when it turns a 304 into Grip-Status.
    if (value.trim() === '') continue;
    const items = parseHeaderItems(value);
    if (items === null || items.length === 0) throw new GripInstructError('failed to parse Grip-Channel');
    for (const item of items) instruct.channels.push(channelFromHeaderItem(item.value, item.params));
  }
  const timeout = headerValue(headers, 'grip-timeout');
  if (timeout !== undefined) instruct.timeoutSec = parseSeconds(timeout, 'Grip-Timeout');
  const keepAlive = headerValue(headers, 'grip-keep-alive');
  if (keepAlive !== undefined) instruct.keepAlive = parseKeepAliveHeader(keepAlive);
  for (const value of headerValues(headers, 'grip-set-meta')) {
    const items = parseHeaderItems(value, true, true);
    if (items === null) throw new GripInstructError('failed to parse Grip-Set-Meta');
    for (const item of items) instruct.meta[item.value] = item.firstParamValue ?? '';
  }
  const status = headerValue(headers, 'grip-status');
  if (status !== undefined && status !== '') {
    const match = /^(\d{1,3})(?: (.*))?$/.exec(status.trim());
    if (!match || Number(match[1]) < 100) throw new GripInstructError('Grip-Status contains an invalid status code');
    // A 1xx is interim: a client reading "100 Continue" takes the next answer on its connection as this one's.
    if (Number(match[1]) < 200) throw new GripInstructError('Grip-Status must be a final status (200-999), not 1xx');
    instruct.response.code = Number(match[1]);
    instruct.response.reason = match[2] ?? '';
    if (!isWritableText(instruct.response.reason)) throw new GripInstructError('Grip-Status contains a control character');
  }
  for (const value of headerValues(headers, 'grip-link')) {
    const items = parseHeaderItems(value);
    if (items === null) throw new GripInstructError('failed to parse Grip-Link');
    for (const item of items) {
      const rel = param(item, 'rel');
      if (rel === undefined) continue;
      if (!/^<[^<>\s]+>$/.test(item.value)) throw new GripInstructError('failed to parse Grip-Link value');
      const url = item.value.slice(1, -1);
      if (rel === 'next') {
        const t = param(item, 'timeout');
        instruct.nextLink = {
          url,
          timeoutSec: t === undefined ? DEFAULT_NEXT_LINK_TIMEOUT_SEC : parseSeconds(t, 'Grip-Link timeout'),
        };
      } else if (rel === 'gone') instruct.goneLink = url;
    }
  }

  const expose = headerValues(headers, 'grip-expose-headers').flatMap((v) => v.split(',').map((s) => s.trim().toLowerCase()));
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (lower.startsWith('grip-')) continue;
    if (expose.length > 0 && !expose.includes(lower)) continue;
    instruct.response.headers.push(headers[i]!, headers[i + 1]!);
  }

  if (isJsonInstruct(headers)) {
    if (code !== 200) throw new GripInstructError('response code for application/grip-instruct content must be 200');
    applyJsonInstruct(instruct, body);
  }
  if (instruct.hold !== null && instruct.channels.length === 0) {
    throw new GripInstructError('a hold needs at least one Grip-Channel');
  }
  if (instruct.hold === 'response' && instruct.timeoutSec < MIN_HOLD_TIMEOUT_SEC) instruct.timeoutSec = MIN_HOLD_TIMEOUT_SEC;
  return instruct;
}

function channelFromHeaderItem(name: string, params: readonly [string, string][]): ChannelSubscription {
  const channel: ChannelSubscription = { name, prevId: undefined, filters: [] };
  for (const [k, v] of params) {
    if (k === 'prev-id') channel.prevId = v;
    else if (k === 'filter') channel.filters.push(v);
  }
  validateChannel(channel);
  return channel;
}

function validateChannel(channel: ChannelSubscription): void {
  if (channel.name === '') throw new GripInstructError('a channel name is empty');
  if (channel.filters.length > MAX_FILTERS_PER_CHANNEL) {
    throw new GripInstructError(`too many filters for channel '${channel.name}'`);
  }
  for (const filter of channel.filters) {
    if (!SUPPORTED_FILTERS.has(filter)) throw new GripInstructError(`unsupported filter '${filter}'`);
  }
}

function parseSeconds(text: string, what: string): number {
  if (!/^\s*\d+\s*$/.test(text)) throw new GripInstructError(`failed to parse ${what}`);
  return Number(text);
}

function parseKeepAliveHeader(value: string): KeepAlive {
  const items = parseHeaderItems(value, false);
  const item = items?.[0];
  if (item === undefined || item.value === '') throw new GripInstructError('Grip-Keep-Alive cannot be empty');
  // Taken whole: base64 padding and raw data may contain '='.
  const raw = item.value;
  const mode = param(item, 'mode') ?? 'idle';
  if (mode !== 'idle' && mode !== 'interval') throw new GripInstructError(`no such Grip-Keep-Alive mode '${mode}'`);
  const t = param(item, 'timeout');
  const timeoutSec = t === undefined ? DEFAULT_KEEP_ALIVE_TIMEOUT_SEC : parseSeconds(t, 'Grip-Keep-Alive timeout');
  const format = param(item, 'format') ?? 'raw';
  let data: Buffer;
  if (format === 'raw') data = Buffer.from(raw, 'utf8');
  else if (format === 'cstring') data = unescapeCString(raw);
  else if (format === 'base64') {
    if (!isBase64(raw)) throw new GripInstructError('Grip-Keep-Alive data is not base64');
    data = Buffer.from(raw, 'base64');
  } else throw new GripInstructError(`no such Grip-Keep-Alive format '${format}'`);
  return { data, timeoutSec, mode };
}

/** Pushpin's cstring: `\\`, `\r`, `\n`, `\t` (js-grip writes it), `\xHH`. */
function unescapeCString(text: string): Buffer {
  const bytes: number[] = [];
  const utf8 = Buffer.from(text, 'utf8');
  for (let i = 0; i < utf8.length; i++) {
    const c = utf8[i]!;
    if (c !== 0x5c) {
      bytes.push(c);
      continue;
    }
    const next = utf8[++i];
    if (next === 0x5c) bytes.push(0x5c);
    else if (next === 0x72) bytes.push(0x0d);
    else if (next === 0x6e) bytes.push(0x0a);
    else if (next === 0x74) bytes.push(0x09);
    else if (next === 0x78) {
      const hex = utf8.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new GripInstructError('failed to parse Grip-Keep-Alive cstring format');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else throw new GripInstructError('failed to parse Grip-Keep-Alive cstring format');
  }
  return Buffer.from(bytes);
}

type Json = Record<string, unknown>;

function applyJsonInstruct(instruct: Instruct, body: Buffer): void {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GripInstructError('failed to parse application/grip-instruct content as JSON');
  }
  if (!isObject(doc)) throw new GripInstructError('instruct must be an object');
  // The JSON body is the instruction, not content for the client.
  instruct.response.body = Buffer.alloc(0);
  instruct.response.headers = withoutHeader(instruct.response.headers, 'content-type');
  if (doc.hold !== undefined) {
    if (!isObject(doc.hold)) throw new GripInstructError("instruct contains 'hold' with wrong type");
    const hold = doc.hold;
    const mode = hold.mode ?? 'response';
    if (mode !== 'response' && mode !== 'stream') throw new GripInstructError("hold 'mode' must be 'response' or 'stream'");
    instruct.hold = mode;
    if (!Array.isArray(hold.channels)) throw new GripInstructError("hold 'channels' must be a list");
    instruct.channels = hold.channels.map((c: unknown) => {
      if (!isObject(c) || typeof c.name !== 'string') throw new GripInstructError('each channel needs a string name');
      if (c['prev-id'] !== undefined && typeof c['prev-id'] !== 'string') {
        throw new GripInstructError("channel 'prev-id' must be a string");
      }
      const filters = c.filters ?? [];
      if (!Array.isArray(filters) || !filters.every((f) => typeof f === 'string')) {
        throw new GripInstructError('filters contains value with wrong type');
      }
      const channel: ChannelSubscription = { name: c.name, prevId: c['prev-id'], filters };
      validateChannel(channel);
      return channel;
    });
    if (hold.timeout !== undefined) {
      if (typeof hold.timeout !== 'number' || !Number.isInteger(hold.timeout) || hold.timeout < 0) {
        throw new GripInstructError("hold contains 'timeout' with wrong type");
      }
      instruct.timeoutSec = hold.timeout;
    }
    if (hold['keep-alive'] !== undefined) {
      const ka = hold['keep-alive'];
      if (!isObject(ka)) throw new GripInstructError("hold contains 'keep-alive' with wrong type");
      const data = contentOf(ka, 'content', 'keep-alive');
      if (data === undefined || data.length === 0) throw new GripInstructError('keep-alive content cannot be empty');
      const t = ka.timeout ?? DEFAULT_KEEP_ALIVE_TIMEOUT_SEC;
      if (typeof t !== 'number' || t < 0) throw new GripInstructError("keep-alive contains 'timeout' with wrong type");
      const mode = ka.mode ?? 'idle';
      if (mode !== 'idle' && mode !== 'interval') throw new GripInstructError("keep-alive 'mode' must be idle or interval");
      instruct.keepAlive = { data, timeoutSec: t, mode };
    }
    if (hold.meta !== undefined) {
      if (!isObject(hold.meta)) throw new GripInstructError("hold contains 'meta' with wrong type");
      for (const [k, v] of Object.entries(hold.meta)) {
        if (typeof v !== 'string') throw new GripInstructError(`meta '${k}' must be a string`);
        instruct.meta[k] = v;
      }
    }
  }
  if (doc.response !== undefined) {
    if (!isObject(doc.response)) throw new GripInstructError("instruct contains 'response' with wrong type");
    const r = doc.response;
    if (r.code !== undefined) {
      const code = typeof r.code === 'string' ? Number(r.code) : r.code;
      if (typeof code !== 'number' || !Number.isInteger(code) || code < 200 || code > 999) {
        throw new GripInstructError("response contains 'code' with wrong value (a final status, 200-999)");
      }
      instruct.response.code = code;
    }
    if (r.reason !== undefined) {
      if (typeof r.reason !== 'string') throw new GripInstructError("response contains 'reason' with wrong type");
      if (!isWritableText(r.reason)) throw new GripInstructError("response 'reason' contains a control character");
      instruct.response.reason = r.reason;
    }
    if (r.headers !== undefined) instruct.response.headers = jsonHeaders(r.headers, 'response');
    instruct.response.body = contentOf(r, 'body', 'response') ?? Buffer.alloc(0);
  }
}

/** `{"name": "value"}` or `[["name", "value"], ...]`, as Pushpin accepts. */
export function jsonHeaders(value: unknown, where: string): string[] {
  const out: string[] = [];
  if (Array.isArray(value)) {
    for (const pair of value) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw new GripInstructError(`${where} headers must be [name, value] string pairs`);
      }
      out.push(checkedField(pair[0], pair[1], where), pair[1]);
    }
    return out;
  }
  if (!isObject(value)) throw new GripInstructError(`${where} contains 'headers' with wrong type`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new GripInstructError(`${where} header '${k}' must be a string`);
    out.push(checkedField(k, v, where), v);
  }
  return out;
}

/**
 * A header from JSON that Node could not write (a name that is no token, a CR or LF in a value) is refused
 * here, where the one who sent it gets the error: at delivery it would cut the held client's connection.
 */
function checkedField(name: string, value: string, where: string): string {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  } catch {
    throw new GripInstructError(`${where} header ${JSON.stringify(name.slice(0, 64))} is not a valid HTTP field`);
  }
  return name;
}

/** `key` as text or `key-bin` as base64, the pair every GRIP content field comes in. */
export function contentOf(obj: Json, key: string, where: string): Buffer | undefined {
  const text = obj[key];
  const bin = obj[`${key}-bin`];
  if (text !== undefined) {
    if (typeof text !== 'string') throw new GripInstructError(`${where} contains '${key}' with wrong type`);
    return Buffer.from(text, 'utf8');
  }
  if (bin !== undefined) {
    if (typeof bin !== 'string') throw new GripInstructError(`${where} contains '${key}-bin' with wrong type`);
    // Node's decoder skips what is not base64, so garbage would go out as a few stray bytes: refuse it.
    if (!isBase64(bin)) throw new GripInstructError(`${where} contains '${key}-bin' that is not base64`);
    return Buffer.from(bin, 'base64');
  }
  return undefined;
}

/** RFC 4648 base64 (standard alphabet, padding optional as js-grip may omit it); white space is not allowed. */
function isBase64(text: string): boolean {
  return /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.replace(/=+$/, '').length % 4 !== 1 && (!text.includes('=') || text.length % 4 === 0);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function headerValue(headers: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === lowerName) return headers[i + 1];
  }
  return undefined;
}

function headerValues(headers: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lowerName) out.push(headers[i + 1]!);
  return out;
}

export function withoutHeader(headers: readonly string[], lowerName: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== lowerName) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
