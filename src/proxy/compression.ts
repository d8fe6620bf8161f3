import type { ServerResponse } from 'node:http';
import {
  brotliCompressSync,
  constants,
  createBrotliCompress,
  createGzip,
  gzipSync,
  type BrotliCompress,
  type Gzip,
} from 'node:zlib';
import type { CompressionConfig } from '../config/schema.js';
import type { Metrics } from '../observe/metrics.js';

export type Encoding = 'br' | 'gzip';

/**
 * When to compress a response, and the header changes that go with it (DESIGN.md, nginx's gzip filter):
 * only what Accept-Encoding allows (q-values, `*`, q=0 refusals), never what is already encoded, marked
 * `no-transform`, a HEAD/1xx/204/206/304 answer, shorter than minBytes, or of a type not in `types`.
 * Compressible answers get `Vary: Accept-Encoding` whether or not this client takes the encoding; compressed
 * ones lose Content-Length and Accept-Ranges and get a weak ETag (the bytes differ from the origin's).
 */
export class CompressionPolicy {
  readonly config: CompressionConfig;
  readonly #metrics: Metrics;
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];
  readonly #suffixes: { type: string; suffix: string }[] = [];

  constructor(config: CompressionConfig, metrics: Metrics) {
    this.config = config;
    this.#metrics = metrics;
    for (const pattern of config.types) {
      const [type, subtype] = pattern.split('/') as [string, string];
      if (subtype === '*') this.#prefixes.push(`${type}/`);
      else if (subtype.startsWith('*')) this.#suffixes.push({ type: `${type}/`, suffix: subtype.slice(1) });
      else this.#exact.add(pattern);
    }
  }

  /**
   * Decides for one response and rewrites `headers` (a flat name/value list) to match. Returns the encoding
   * to apply, or null to send the body as it is.
   */
  negotiate(method: string, status: number, acceptEncoding: string | undefined, headers: string[]): Encoding | null {
    if (status < 200 || status === 204 || status === 206 || status === 304) return null;
    let contentType: string | undefined;
    let contentLength: number | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      const value = headers[i + 1]!;
      if (name === 'content-encoding' && value.trim().toLowerCase() !== 'identity') return null;
      if (name === 'content-range') return null;
      if (name === 'cache-control' && /(?:^|[\s,])no-transform(?:$|[\s,])/i.test(value)) return null;
      if (name === 'content-type') contentType = value;
      else if (name === 'content-length') contentLength = Number(value);
    }
    if (contentType === undefined || !this.#typeMatches(contentType)) return null;
    if (contentLength !== undefined && contentLength < this.config.minBytes) return null;
    addVary(headers);
    if (method === 'HEAD') return null;
    const encoding = chooseEncoding(acceptEncoding, this.config.brotli, this.config.gzip);
    if (encoding === null) return null;
    let w = 0;
    for (let r = 0; r < headers.length; r += 2) {
      const name = headers[r]!.toLowerCase();
      if (name === 'content-length' || name === 'accept-ranges' || name === 'content-encoding') continue;
      let value = headers[r + 1]!;
      // RFC 9110 §8.8.1: a strong validator promises identical bytes; ours are not the origin's.
      if (name === 'etag' && value.startsWith('"')) value = `W/${value}`;
      headers[w++] = headers[r]!;
      headers[w++] = value;
    }
    headers.length = w;
    headers.push('content-encoding', encoding);
    this.#metrics.compressedTotal.inc({ encoding });
    return encoding;
  }

  /** Streaming answers (no length, or an event stream) are flushed after each batch of backend data. */
  static isStreaming(headers: readonly string[]): boolean {
    let length = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'content-length') length = true;
      else if (name === 'content-type' && headers[i + 1]!.toLowerCase().startsWith('text/event-stream')) return true;
    }
    return !length;
  }

  #typeMatches(contentType: string): boolean {
    const semi = contentType.indexOf(';');
    const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (this.#exact.has(type)) return true;
    for (const prefix of this.#prefixes) if (type.startsWith(prefix)) return true;
    for (const { type: t, suffix } of this.#suffixes) if (type.startsWith(t) && type.endsWith(suffix)) return true;
    return false;
  }
}

/**
 * RFC 9110 §12.5.3: the acceptable coding with the highest q; `*` stands for codings not named; q=0 refuses.
 * Brotli wins a tie (smaller at the quality we use, and as fast).
 */
export function chooseEncoding(acceptEncoding: string | undefined, brotli: boolean, gzip: boolean): Encoding | null {
  if (acceptEncoding === undefined) return null;
  let br = -1;
  let gz = -1;
  let star = -1;
  for (const part of acceptEncoding.split(',')) {
    const [token, ...params] = part.split(';');
    const coding = token!.trim().toLowerCase();
    if (coding === '') continue;
    let q = 1;
    for (const param of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(param);
      if (m) q = Number(m[1]);
    }
    if (coding === 'br') br = Math.max(br, q);
    else if (coding === 'gzip' || coding === 'x-gzip') gz = Math.max(gz, q);
    else if (coding === '*') star = Math.max(star, q);
  }
  if (br < 0) br = star;
  if (gz < 0) gz = star;
  const brQ = brotli ? br : 0;
  const gzQ = gzip ? gz : 0;
  if (brQ <= 0 && gzQ <= 0) return null;
  return brQ >= gzQ ? 'br' : 'gzip';
}

function addVary(headers: string[]): void {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'vary') continue;
    const value = headers[i + 1]!;
    if (/(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i.test(value)) return;
    headers[i + 1] = value.trim() === '' ? 'Accept-Encoding' : `${value}, Accept-Encoding`;
    return;
  }
  headers.push('vary', 'Accept-Encoding');
}

/** What the exchange writes a compressed body through. */
export interface ResponseEncoder {
  /** Flushed after each batch of backend data (no length, or an event stream). */
  readonly streaming: boolean;
  write(chunk: Buffer): boolean;
  end(): void;
  destroy(): void;
}

/** Bodies of known length up to this are compressed in one call (see OneShotCompressedBody). */
export const ONE_SHOT_MAX_BYTES = 64 * 1024;

/**
 * The encoder for one response: a known length that is small is compressed in one synchronous call; anything
 * else streams through a zlib stream.
 */
export function createCompressedBody(
  res: ServerResponse,
  encoding: Encoding,
  owner: EncoderOwner,
  knownLength: number | undefined,
  streaming: boolean,
  level: { gzip: number; brotli: number },
): ResponseEncoder {
  if (!streaming && knownLength !== undefined && knownLength <= ONE_SHOT_MAX_BYTES) {
    return new OneShotCompressedBody(res, encoding, level);
  }
  return new CompressedBody(res, encoding, owner, streaming, level);
}

/**
 * A small body of known length, gathered and compressed in one synchronous call at the end, as nginx does
 * in-process. Measured here on a 10 KiB JSON body: a zlib stream per response cost about 0.2 ms of CPU (its
 * state allocation plus several thread-pool round trips), one gzipSync call about 0.05 ms. The window and
 * memory level shrink to the body's size, nginx's rule (ngx_http_gzip_filter_module), which saves most of
 * the per-call allocation; the blocking time is bounded by ONE_SHOT_MAX_BYTES.
 */
export class OneShotCompressedBody implements ResponseEncoder {
  readonly streaming = false;
  readonly #res: ServerResponse;
  readonly #encoding: Encoding;
  readonly #level: { gzip: number; brotli: number };
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(res: ServerResponse, encoding: Encoding, level: { gzip: number; brotli: number }) {
    this.#res = res;
    this.#encoding = encoding;
    this.#level = level;
  }

  write(chunk: Buffer): boolean {
    this.#size += chunk.length;
    // undici enforces the backend's Content-Length; this only guards the one-shot memory bound.
    if (this.#size > ONE_SHOT_MAX_BYTES) {
      this.destroy();
      this.#res.destroy();
      return true;
    }
    this.#chunks.push(chunk);
    return true;
  }

  end(): void {
    if (this.#res.destroyed) return;
    const body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    this.#res.end(this.#encoding === 'br' ? this.#brotli(body) : this.#gzip(body));
  }

  destroy(): void {
    this.#chunks = [];
  }

  #gzip(body: Buffer): Buffer {
    let windowBits = 15;
    let memLevel = 8;
    while (windowBits > 9 && body.length < (1 << (windowBits - 1)) - 262) {
      windowBits--;
      memLevel--;
    }
    return gzipSync(body, { level: this.#level.gzip, windowBits, memLevel: Math.max(1, memLevel) });
  }

  #brotli(body: Buffer): Buffer {
    const lgwin = Math.max(constants.BROTLI_MIN_WINDOW_BITS, Math.min(22, Math.ceil(Math.log2(Math.max(1, body.length)))));
    return brotliCompressSync(body, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: this.#level.brotli,
        [constants.BROTLI_PARAM_LGWIN]: lgwin,
        [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    });
  }
}

/** Who to tell when the encoder can take more (the exchange resumes reading the backend). */
export interface EncoderOwner {
  resumeUpstream(): void;
}

const kBody = Symbol('holdfast.compressedBody');
type Encoder = (Gzip | BrotliCompress) & { [kBody]?: CompressedBody };
type ClientResponse = ServerResponse & { [kBody]?: CompressedBody };

/**
 * A response body compressed on its way to the client, with backpressure end to end: the encoder is piped
 * into the response (it pauses when the client is slow) and `write` returns false while the encoder is full
 * (the backend read pauses until 'drain'). Streaming answers are flushed once per batch of backend data (one
 * setImmediate after the writes of one socket read), so each SSE event leaves at once and nothing waits in
 * the compressor; fixed-length answers are flushed only at the end.
 */
export class CompressedBody implements ResponseEncoder {
  readonly encoder: Encoder;
  readonly #owner: EncoderOwner;
  readonly #flushKind: number;
  /** Flushed after each batch of backend data (no length, or an event stream). */
  readonly streaming: boolean;
  #flushScheduled = false;
  #ended = false;

  constructor(res: ServerResponse, encoding: Encoding, owner: EncoderOwner, streaming: boolean, level: { gzip: number; brotli: number }) {
    this.#owner = owner;
    this.streaming = streaming;
    if (encoding === 'br') {
      this.encoder = createBrotliCompress({
        params: {
          [constants.BROTLI_PARAM_QUALITY]: level.brotli,
          // A 256 KiB window: on-the-fly bodies gain little from brotli's default 4 MiB, and memory is per response.
          [constants.BROTLI_PARAM_LGWIN]: 18,
        },
      });
      this.#flushKind = constants.BROTLI_OPERATION_FLUSH;
    } else {
      this.encoder = createGzip({ level: level.gzip });
      this.#flushKind = constants.Z_SYNC_FLUSH;
    }
    this.encoder[kBody] = this;
    (res as ClientResponse)[kBody] = this;
    this.encoder.pipe(res);
    res.once('close', resOnClose);
  }

  write(chunk: Buffer): boolean {
    const more = this.encoder.write(chunk);
    if (this.streaming && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(flushOnImmediate, this);
    }
    if (more) return true;
    this.encoder.once('drain', encoderOnDrain);
    return false;
  }

  end(): void {
    this.#ended = true;
    this.encoder.end();
  }

  flushNow(): void {
    this.#flushScheduled = false;
    if (!this.#ended && !this.encoder.destroyed) this.encoder.flush(this.#flushKind);
  }

  resume(): void {
    this.#owner.resumeUpstream();
  }

  /** The client went away or the backend failed: free the compressor now. */
  destroy(): void {
    this.#ended = true;
    if (!this.encoder.destroyed) this.encoder.destroy();
  }
}

function flushOnImmediate(body: CompressedBody): void {
  body.flushNow();
}

function encoderOnDrain(this: Encoder): void {
  this[kBody]?.resume();
}

function resOnClose(this: ClientResponse): void {
  this[kBody]?.destroy();
}
