import { randomBytes } from 'node:crypto';
import { IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { constants as h2, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Duplex, type Readable } from 'node:stream';
import type { H2Request } from '../edge/h2-compat.js';
import type { UpgradeRouter } from './upgrade-router.js';

/**
 * WebSocket over HTTP/2 (RFC 8441): a CONNECT stream with `:protocol websocket` carries the same frames
 * an upgraded HTTP/1.1 connection does. The passthrough tunnel and the WebSocket-over-HTTP session (and ws,
 * which terminates the latter) are written against an upgraded socket; this module gives them one: the
 * stream as a socket, and the request as the HTTP/1.1 handshake it stands for. What they write back as an
 * HTTP/1.1 answer head becomes the stream's HEADERS: 101 is RFC 8441's 200 (§5), anything else is relayed
 * with its status and body. The backend hop stays an HTTP/1.1 upgrade, with a Sec-WebSocket-Key of our own
 * (HTTP/2 has none; the backend's Sec-WebSocket-Accept answers it and is not passed on).
 */
export function acceptH2WebSocket(upgrades: UpgradeRouter, req: H2Request, target: string, clientAddress: string): void {
  const encrypted = (req.socket as Socket & { encrypted?: boolean }).encrypted === true;
  const socket = new H2WebSocketStream(req.stream, req, clientAddress, encrypted);
  upgrades.handle(http1Handshake(req, socket, target), socket as unknown as Socket, Buffer.alloc(0), target, clientAddress);
}

/** The HTTP/1.1 upgrade request an extended CONNECT stands for (RFC 8441 §5, RFC 6455 §4.1). */
function http1Handshake(req: H2Request, socket: H2WebSocketStream, target: string): IncomingMessage {
  const handshake = new IncomingMessage(socket as unknown as Socket);
  handshake.method = 'GET';
  handshake.url = target;
  handshake.httpVersion = '1.1';
  handshake.httpVersionMajor = 1;
  handshake.httpVersionMinor = 1;
  handshake.complete = true;
  const raw = [...req.rawHeaders, 'connection', 'Upgrade', 'upgrade', 'websocket', 'sec-websocket-key', randomBytes(16).toString('base64')];
  handshake.rawHeaders = raw;
  // Node fills `headers` from rawHeaders only for what its parser counted: ws reads this object.
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    headers[name] = headers[name] === undefined ? raw[i + 1]! : `${headers[name]}, ${raw[i + 1]!}`;
  }
  handshake.headers = headers;
  return handshake;
}

/** Fields of an HTTP/1.1 answer that have no place on an HTTP/2 stream (RFC 9113 §8.2.2), or belong to the HTTP/1.1 handshake. */
const NOT_ON_STREAM = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'sec-websocket-accept']);
const HEAD_END = Buffer.from('\r\n\r\n');
/** An answer head longer than this is not one (what writes here writes whole heads). */
const MAX_HEAD_BYTES = 64 * 1024;

/**
 * An HTTP/2 stream as the socket of an upgraded connection: reads are the stream's DATA (through Node's
 * compatibility request, which owns the stream's reading), writes go out as DATA after the answer head has
 * become HEADERS, `end` is END_STREAM (a FIN), `destroy` and `resetAndDestroy` are RST_STREAM (CANCEL).
 */
export class H2WebSocketStream extends Duplex {
  readonly remoteAddress: string;
  readonly encrypted: boolean;
  bytesRead = 0;
  bytesWritten = 0;
  readonly #stream: ServerHttp2Stream;
  readonly #body: Readable;
  /** The answer head collected so far; null once it went out as HEADERS. */
  #head: Buffer | null = Buffer.alloc(0);
  /** Set when the answer body is chunked: DATA carries the chunks' content only. */
  #chunks: ChunkDecoder | null = null;

  constructor(stream: ServerHttp2Stream, body: Readable, remoteAddress: string, encrypted: boolean) {
    super({ allowHalfOpen: true });
    this.#stream = stream;
    this.#body = body;
    this.remoteAddress = remoteAddress;
    this.encrypted = encrypted;
    body.on('data', (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      if (!this.push(chunk)) body.pause();
    });
    body.on('end', () => this.push(null));
    stream.on('close', () => this.destroy());
    stream.on('error', (err: Error) => this.destroy(err));
  }

  override _read(): void {
    this.#body.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    if (this.#head === null) return this.#writeBody(chunk, done);
    const head = Buffer.concat([this.#head, chunk]);
    const end = head.indexOf(HEAD_END);
    if (end < 0) {
      if (head.length > MAX_HEAD_BYTES) return done(new Error('an upgraded socket answer head too long'));
      this.#head = head;
      return done();
    }
    this.#head = null;
    this.#respond(head.toString('latin1', 0, end));
    const rest = head.subarray(end + HEAD_END.length);
    if (rest.length > 0) this.#writeBody(rest, done);
    else done();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.#head !== null) this.#stream.close(h2.NGHTTP2_CANCEL); // ended before any answer
    else if (!this.#stream.destroyed) this.#stream.end();
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    if (!this.#stream.destroyed && !this.#stream.closed) this.#stream.close(h2.NGHTTP2_CANCEL);
    done(err);
  }

  /** What net.Socket's does for a TCP connection: RST_STREAM, dropping what is queued. */
  resetAndDestroy(): this {
    if (!this.#stream.destroyed) this.#stream.close(h2.NGHTTP2_CANCEL);
    return this.destroy();
  }

  setNoDelay(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  #writeBody(bytes: Buffer, done: (err?: Error | null) => void): void {
    const data = this.#chunks === null ? bytes : this.#chunks.decode(bytes);
    if (data.length === 0 || this.#stream.destroyed) return done();
    this.#stream.write(data, done);
  }

  /** An HTTP/1.1 answer head (status line and fields) as this stream's HEADERS. */
  #respond(head: string): void {
    const lines = head.split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: OutgoingHttpHeaders = { ':status': status === 101 ? 200 : status };
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'transfer-encoding' && /\bchunked\b/i.test(value)) this.#chunks = new ChunkDecoder();
      if (NOT_ON_STREAM.has(name)) continue;
      const earlier = headers[name];
      headers[name] = earlier === undefined ? value : Array.isArray(earlier) ? [...earlier, value] : [String(earlier), value];
    }
    if (!this.#stream.destroyed) this.#stream.respond(headers);
  }
}

/** RFC 9112 §7.1: chunked framing to content, incrementally; trailers after the last chunk are dropped. */
class ChunkDecoder {
  #sizeLine = '';
  /** Content bytes left in the current chunk, then the CRLF after it (2 more). */
  #left = 0;
  #done = false;

  decode(bytes: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < bytes.length && !this.#done) {
      if (this.#left > 2) {
        const take = Math.min(this.#left - 2, bytes.length - i);
        out.push(bytes.subarray(i, i + take));
        this.#left -= take;
        i += take;
      } else if (this.#left > 0) {
        this.#left--;
        i++;
      } else {
        const lf = bytes.indexOf(0x0a, i);
        if (lf < 0) {
          this.#sizeLine += bytes.toString('latin1', i);
          break;
        }
        const line = this.#sizeLine + bytes.toString('latin1', i, lf);
        this.#sizeLine = '';
        i = lf + 1;
        const size = Number.parseInt(line.split(';', 1)[0]!.trim(), 16);
        if (!Number.isFinite(size) || size === 0) this.#done = true;
        else this.#left = size + 2;
      }
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}
