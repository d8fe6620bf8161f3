import { EventEmitter } from 'node:events';
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { H1BodyRequest, H1Request } from './h1-request.js';

/**
 * An HTTP/1 response as the edge's own engine writes it (src/edge/h1-server.ts): the part of Node's
 * ServerResponse that Holdfast uses (writeHead with a flat field list, write, end, flushHeaders, the interim
 * answers, destroy, and the `drain`, `finish` and `close` events), on the connection's socket directly.
 * No stream object: a head and a small body leave in one corked write (writev), and a pipelined response
 * that is not yet at the front of its connection keeps its bytes until it is. The framing is Node's, so
 * clients see exactly what they saw before (Date, `Connection: keep-alive` with `Keep-Alive: timeout=N`,
 * chunked when the length is unknown on HTTP/1.1, close-delimited on HTTP/1.0).
 */

/** What a response needs of its connection (edge/h1-wire.ts). */
export interface ResponseWire {
  readonly socket: Socket;
  /**
   * A held stream's connection carries nothing after it: the parser goes back to the pool, the connection
   * closes when this response ends, and what the client sends is dropped. False when it does not qualify.
   */
  releaseParser(res: H1Response): boolean;
  /** `Keep-Alive: timeout=N\r\n`, or '' when no idle timeout is advertised. */
  readonly keepAliveLine: string;
  /** The response wrote its last bytes: the next pipelined one may write, or the connection closes. */
  responseEnded(res: H1Response): void;
  /**
   * The write callback for a response's last bytes, one per connection: the connection keeps its ended
   * responses in order and finishes the first on each call (socket writes complete in order), so no
   * response needs a closure of its own.
   */
  readonly endWritten: (err?: Error | null) => void;
  /** `res` is about to write its last bytes with `endWritten` as their callback. */
  awaitEndWritten(res: H1Response): void;
}

type Chunk = string | Buffer | Uint8Array;
type Callback = (err?: Error | null) => void;

/** Above this a response that cannot write yet tells its writer to wait (Node's default high-water mark). */
const PENDING_HIGH_WATER = 16 * 1024;

export class H1Response extends EventEmitter {
  readonly req: H1Request | H1BodyRequest;
  /** The connection, once this response is at its front (null while a pipelined one ahead still writes). */
  socket: Socket | null = null;
  statusCode = 200;
  statusMessage = '';
  /** Whether the connection stays open after this response (from the request; the edge may clear it). */
  shouldKeepAlive: boolean;
  /** The head is built (writeHead ran): Node's `headersSent`. */
  headersSent = false;
  /** The head is on the socket. */
  _headerSent = false;
  chunkedEncoding = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  /** This response closes the connection after it (Node's `_last`). */
  last = false;
  readonly #wire: ResponseWire;
  /** A body may be sent at all: not for HEAD, 204, 304 and 1xx. */
  #hasBody: boolean;
  #useChunkedByDefault: boolean;
  #expectContinue: boolean;
  #sent100 = false;
  /** The built head, until it goes out with the first body bytes. */
  #head: string | null = null;
  /** Bytes written while not at the front of the connection. */
  #pending: Chunk[] | null = null;
  #pendingBytes = 0;
  #needDrain = false;
  #closeEmitted = false;
  /** end() ran while a pipelined response ahead still wrote: the end goes out with the rest at our turn. */
  #endPending = false;
  #endCallback: Callback | undefined;

  constructor(req: H1Request | H1BodyRequest, wire: ResponseWire, keepAlive: boolean, expectContinue: boolean) {
    super();
    this.req = req;
    this.#wire = wire;
    this.shouldKeepAlive = keepAlive;
    this.#hasBody = req.method !== 'HEAD';
    // HTTP/1.0 has no chunked coding: a body of unknown length is delimited by the close.
    this.#useChunkedByDefault = req.httpVersionMajor > 1 || req.httpVersionMinor >= 1;
    this.#expectContinue = expectContinue;
  }

  /** Called by the connection when this response reaches its front: what it wrote meanwhile goes out now. */
  assignSocket(socket: Socket): void {
    this.socket = socket;
    const pending = this.#pending;
    let ok = true;
    if (pending !== null) {
      this.#pending = null;
      this.#pendingBytes = 0;
      if (this.#head === null) this._headerSent = this.headersSent;
      socket.cork();
      for (const chunk of pending) ok = typeof chunk === 'string' ? socket.write(chunk, 'latin1') : socket.write(chunk);
      socket.uncork();
    }
    if (this.#endPending) {
      // The end was among them: its completion is the socket's write of it, awaited here.
      this.#endPending = false;
      this.#wire.awaitEndWritten(this);
      socket.write(EMPTY, this.#wire.endWritten);
      this.#wire.responseEnded(this);
    } else if (this.#needDrain && ok) {
      this.#needDrain = false;
      process.nextTick(emitDrain, this);
    }
  }

  get writableLength(): number {
    return this.#pendingBytes + (this.socket === null ? 0 : this.socket.writableLength);
  }

  get writableNeedDrain(): boolean {
    return !this.destroyed && !this.writableEnded && this.#needDrain;
  }

  get writable(): boolean {
    return !this.destroyed && !this.writableEnded;
  }

  get finished(): boolean {
    return this.writableEnded;
  }

  writeHead(statusCode: number, reasonOrHeaders?: string | OutgoingHttpHeaders | readonly string[], fields?: OutgoingHttpHeaders | readonly string[]): this {
    if (this.headersSent) throw codedError(TypeError, 'ERR_HTTP_HEADERS_SENT', 'Cannot write headers after they are sent to the client');
    if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
      throw codedError(RangeError, 'ERR_HTTP_INVALID_STATUS_CODE', `Invalid status code: ${String(statusCode)}`);
    }
    let reason: string;
    let headers: OutgoingHttpHeaders | readonly string[] | undefined;
    if (typeof reasonOrHeaders === 'string') {
      reason = reasonOrHeaders;
      headers = fields;
    } else {
      reason = this.statusMessage || (STATUS_CODES[statusCode] ?? 'unknown');
      headers = reasonOrHeaders;
    }
    if (INVALID_VALUE.test(reason)) throw codedError(TypeError, 'ERR_INVALID_CHAR', 'Invalid character in statusMessage');
    const before = { code: this.statusCode, message: this.statusMessage, hasBody: this.#hasBody };
    this.statusCode = statusCode;
    this.statusMessage = reason;
    if (statusCode === 204 || statusCode === 304 || statusCode < 200) this.#hasBody = false;
    try {
      this.#storeHead(headers, undefined);
    } catch (err) {
      // Refused with nothing sent: the response is as it was, for an error answer on it.
      this.statusCode = before.code;
      this.statusMessage = before.message;
      this.#hasBody = before.hasBody;
      throw err;
    }
    return this;
  }

  /** The head alone, now (a stream's first event may be minutes away). */
  flushHeaders(): void {
    if (!this.headersSent) this.#storeHead(undefined, undefined);
    if (this.#head !== null && !this.destroyed) this.#send(null, undefined);
  }

  write(chunk: Chunk, encodingOrCallback?: BufferEncoding | Callback, callback?: Callback): boolean {
    if (this.writableEnded || this.destroyed) return false;
    const encoding = typeof encodingOrCallback === 'string' ? encodingOrCallback : undefined;
    if (!this.headersSent) this.#storeHead(undefined, undefined);
    const cb = typeof encodingOrCallback === 'function' ? encodingOrCallback : callback;
    if (!this.#hasBody || byteLength(chunk, encoding) === 0) {
      if (this.#head !== null) this.#send(null, undefined);
      if (cb !== undefined) process.nextTick(cb);
      return true;
    }
    const ok = this.#send(chunk, encoding, cb);
    if (!ok) this.#needDrain = true;
    return ok;
  }

  end(chunkOrCallback?: Chunk | Callback, encodingOrCallback?: BufferEncoding | Callback, callback?: Callback): this {
    if (this.writableEnded) return this;
    let chunk: Chunk | undefined;
    let encoding: BufferEncoding | undefined;
    let cb: Callback | undefined;
    if (typeof chunkOrCallback === 'function') cb = chunkOrCallback;
    else {
      chunk = chunkOrCallback ?? undefined;
      if (typeof encodingOrCallback === 'function') cb = encodingOrCallback;
      else {
        encoding = encodingOrCallback;
        cb = callback;
      }
    }
    if (this.destroyed) return this;
    const size = chunk === undefined ? 0 : byteLength(chunk, encoding);
    // A whole body given at the end: its length is known, so it goes with Content-Length (as Node does).
    if (!this.headersSent) this.#storeHead(undefined, this.#hasBody ? size : 0);
    this.writableEnded = true;
    this.#endCallback = cb;
    this.#sendEnd(size > 0 && this.#hasBody ? chunk! : null, encoding, size);
    return this;
  }

  /** RFC 9110 §15.2.1: the client may send its body. */
  writeContinue(): void {
    if (this.#sent100 || this.headersSent) return;
    this.#sent100 = true;
    this.#raw('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /** RFC 2518's 102: the answer is coming. */
  writeProcessing(): void {
    if (!this.headersSent) this.#raw('HTTP/1.1 102 Processing\r\n\r\n');
  }

  /** RFC 8297's 103, with the Link fields first (as Node writes them). */
  writeEarlyHints(hints: Record<string, string | string[]>): void {
    if (this.headersSent) return;
    const link = hints.link;
    if (link === undefined || link === null) return;
    const links = Array.isArray(link) ? link.join(', ') : link;
    if (links.length === 0) return;
    if (INVALID_VALUE.test(links)) throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', 'Invalid Link value for early hints');
    let head = `HTTP/1.1 103 Early Hints\r\nLink: ${links}\r\n`;
    for (const name of Object.keys(hints)) {
      if (name === 'link') continue;
      head += fieldLines(name, hints[name]!);
    }
    this.#raw(`${head}\r\n`);
  }

  /** Ends the connection under this response (Node's OutgoingMessage.destroy). */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.#wire.socket.destroy(err);
    return this;
  }

  /** The socket took what was queued: a writer told to wait may go on. */
  onSocketDrain(): void {
    if (!this.#needDrain || this.writableEnded) return;
    this.#needDrain = false;
    this.emit('drain');
  }

  /** The connection closed before this response finished: its `close` tells its writers. */
  socketClosed(): void {
    this.destroyed = true;
    this.#emitClose();
  }

  // -- framing --

  #storeHead(headers: OutgoingHttpHeaders | readonly string[] | undefined, contentLength: number | undefined): void {
    if (this.statusMessage === '') this.statusMessage = STATUS_CODES[this.statusCode] ?? 'unknown';
    let head = `HTTP/1.1 ${this.statusCode} ${this.statusMessage}\r\n`;
    let seen = 0;
    // What the fields decide (#framingField), put back if one of them is refused: the caller may then
    // answer an error on this same response.
    const last = this.last;
    const keepAlive = this.shouldKeepAlive;
    const chunked = this.chunkedEncoding;
    try {
      if (Array.isArray(headers)) {
        const list = headers as readonly string[];
        if (list.length % 2 !== 0) throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE', 'The header list must hold name, value pairs');
        for (let i = 0; i < list.length; i += 2) {
          const name = list[i]!;
          const value = String(list[i + 1]);
          checkField(name, value);
          seen |= this.#framingField(name, value);
          head += `${name}: ${value}\r\n`;
        }
      } else if (headers !== undefined) {
        for (const name of Object.keys(headers)) {
          const value = (headers as OutgoingHttpHeaders)[name];
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [String(value)]) {
            checkField(name, v);
            seen |= this.#framingField(name, v);
          }
          head += fieldLines(name, value);
        }
      }
    } catch (err) {
      this.last = last;
      this.shouldKeepAlive = keepAlive;
      this.chunkedEncoding = chunked;
      throw err;
    }
    if ((seen & SEEN_DATE) === 0) head += `Date: ${utcDate()}\r\n`;
    // A client told to wait for 100 Continue and answered without it may still send its body: close after.
    if (this.#expectContinue && !this.#sent100) this.shouldKeepAlive = false;
    if ((seen & SEEN_CONNECTION) === 0) {
      const keepAlive = this.shouldKeepAlive && ((seen & SEEN_LENGTH) !== 0 || this.#useChunkedByDefault);
      if (keepAlive) head += `Connection: keep-alive\r\n${this.#wire.keepAliveLine}`;
      else {
        this.last = true;
        head += 'Connection: close\r\n';
      }
    }
    if ((seen & (SEEN_LENGTH | SEEN_TRANSFER_ENCODING)) === 0) {
      if (!this.#hasBody) this.chunkedEncoding = false;
      else if (!this.#useChunkedByDefault) this.last = true;
      else if (contentLength !== undefined) head += `Content-Length: ${contentLength}\r\n`;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.chunkedEncoding = true;
      }
    }
    this.#head = `${head}\r\n`;
    // Only now: a field refused above throws with nothing sent, and the caller may still answer an error.
    this.headersSent = true;
  }

  /** Which framing field `name` is (a SEEN_* bit, or 0), noting what it says: Node's rules in _storeHeader. */
  #framingField(name: string, value: string): number {
    switch (name.length) {
      case 4:
        return name.toLowerCase() === 'date' ? SEEN_DATE : 0;
      case 10:
        if (name.toLowerCase() !== 'connection') return 0;
        if (CONNECTION_CLOSE.test(value)) this.last = true;
        else this.shouldKeepAlive = true;
        return SEEN_CONNECTION;
      case 14:
        return name.toLowerCase() === 'content-length' ? SEEN_LENGTH : 0;
      case 17:
        if (name.toLowerCase() !== 'transfer-encoding') return 0;
        if (CHUNKED.test(value)) this.chunkedEncoding = true;
        return SEEN_TRANSFER_ENCODING;
      default:
        return 0;
    }
  }

  /** Body bytes (framed as chunks when chunked), after the head if it has not gone yet. */
  #send(chunk: Chunk | null, encoding: BufferEncoding | undefined, cb?: Callback): boolean {
    const socket = this.socket;
    const head = this.#head;
    this.#head = null;
    if (socket === null) {
      if (head !== null) this.#queue(head);
      if (chunk !== null) this.#queueBody(chunk, encoding);
      if (cb !== undefined) process.nextTick(cb);
      return this.#pendingBytes < PENDING_HIGH_WATER;
    }
    if (socket.destroyed) return false;
    if (chunk === null) {
      if (head !== null) {
        this._headerSent = true;
        return socket.write(head, 'latin1', cb);
      }
      return true;
    }
    const chunked = this.chunkedEncoding;
    if (head === null && !chunked) return socket.write(chunk, encoding as BufferEncoding, cb);
    socket.cork();
    if (head !== null) {
      this._headerSent = true;
      socket.write(head, 'latin1');
    }
    if (chunked) socket.write(chunkSizeLine(byteLength(chunk, encoding)), 'latin1');
    let ok = socket.write(chunk, encoding as BufferEncoding, chunked ? undefined : cb);
    if (chunked) ok = socket.write('\r\n', 'latin1', cb);
    socket.uncork();
    return ok;
  }

  #sendEnd(body: Chunk | null, encoding: BufferEncoding | undefined, size: number): void {
    const socket = this.socket;
    const head = this.#head;
    this.#head = null;
    const chunked = this.chunkedEncoding && this.#hasBody;
    if (socket === null) {
      if (head !== null) this.#queue(head);
      if (body !== null) this.#queueBody(body, encoding);
      if (chunked) this.#queue(LAST_CHUNK);
      this.#endPending = true;
      return;
    }
    if (socket.destroyed) {
      this.finishWrite(new Error('the connection closed'));
      return;
    }
    const wire = this.#wire;
    wire.awaitEndWritten(this);
    if (head !== null) this._headerSent = true;
    if (!chunked) {
      // The common answer (a head and a whole small body, or a head alone): one buffer, one write call,
      // one syscall. Copying a few hundred bytes costs less than the stream machinery of a writev.
      if (body === null) socket.write(head ?? EMPTY, 'latin1', wire.endWritten);
      else if (head === null) socket.write(body, encoding as BufferEncoding, wire.endWritten);
      else socket.write(joined(head, body, encoding, size), wire.endWritten);
    } else {
      socket.cork();
      if (head !== null) socket.write(head, 'latin1');
      if (body !== null) {
        socket.write(chunkSizeLine(size), 'latin1');
        socket.write(body, encoding as BufferEncoding);
        socket.write('\r\n', 'latin1');
      }
      socket.write(LAST_CHUNK, 'latin1', wire.endWritten);
      socket.uncork();
    }
    wire.responseEnded(this);
  }

  #queue(text: string): void {
    (this.#pending ??= []).push(text);
    this.#pendingBytes += text.length;
  }

  #queueBody(chunk: Chunk, encoding: BufferEncoding | undefined): void {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    if (this.chunkedEncoding) this.#queue(chunkSizeLine(bytes.length));
    (this.#pending ??= []).push(bytes);
    this.#pendingBytes += bytes.length;
    if (this.chunkedEncoding) this.#queue('\r\n');
  }

  /** Interim answers go out ahead of the head, in place (or queued with the rest until this response's turn). */
  #raw(text: string): void {
    if (this.destroyed) return;
    if (this.socket === null) this.#queue(text);
    else if (!this.socket.destroyed) this.socket.write(text, 'latin1');
  }

  /** The connection wrote this response's last bytes (or failed to): `finish`, then `close`. */
  finishWrite(err?: Error | null): void {
    const cb = this.#endCallback;
    this.#endCallback = undefined;
    if (err) {
      this.destroyed = true;
      cb?.(err);
      this.#emitClose();
      return;
    }
    this.writableFinished = true;
    this.emit('finish');
    cb?.();
    // Already outside end() (a write callback runs later): close can follow at once, no tick of its own.
    this.#emitClose();
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.emit('close');
  }

  /** Give the request parser back: see ResponseWire.releaseParser. */
  releaseParser(): boolean {
    return this.#wire.releaseParser(this);
  }

}

const EMPTY = '';
const SEEN_DATE = 1;
const SEEN_CONNECTION = 2;
const SEEN_LENGTH = 4;
const SEEN_TRANSFER_ENCODING = 8;

/** A head and a body in one buffer. */
function joined(head: string, body: Chunk, encoding: BufferEncoding | undefined, bodyBytes: number): Buffer {
  const out = Buffer.allocUnsafe(head.length + bodyBytes);
  out.write(head, 0, 'latin1');
  if (typeof body === 'string') out.write(body, head.length, encoding);
  else out.set(body, head.length);
  return out;
}
const LAST_CHUNK = '0\r\n\r\n';
const CONNECTION_CLOSE = /(?:^|\W)close(?:$|\W)/i;
const CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;
/** RFC 9110 §5.5's field-value characters (Node's checkInvalidHeaderChar): no CR, LF or NUL gets through. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;

function checkField(name: string, value: string): void {
  if (!TOKEN.test(name)) throw codedError(TypeError, 'ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`);
  if (INVALID_VALUE.test(value)) throw codedError(TypeError, 'ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`);
}

function fieldLines(name: string, value: string | number | readonly string[]): string {
  if (!Array.isArray(value)) return `${name}: ${String(value)}\r\n`;
  let lines = '';
  for (const v of value as readonly string[]) lines += `${name}: ${v}\r\n`;
  return lines;
}

/** RFC 9112 §7.1: a chunk's size line. */
function chunkSizeLine(size: number): string {
  return `${size.toString(16)}\r\n`;
}

function byteLength(chunk: Chunk, encoding: BufferEncoding | undefined): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.byteLength;
}

function codedError(Kind: typeof TypeError | typeof RangeError, code: string, message: string): Error & { code: string } {
  const err = new Kind(message) as Error & { code: string };
  err.code = code;
  return err;
}

function emitDrain(res: H1Response): void {
  res.emit('drain');
}


let dateSecond = -1;
let dateText = '';

/** The Date field's value, made once a second (Node caches it the same way). */
function utcDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}
