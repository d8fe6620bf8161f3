import type { Socket } from 'node:net';
import { H1BodyRequest, H1Request } from '../http/h1-request.js';
import { H1Response, type ResponseWire } from '../http/h1-response.js';
import type { Llhttp, NativeParser, ParseError } from '../http/llhttp.js';
import { consumeHandle, handleReading, startReadingHandle, stopReadingHandle, unconsumeHandle } from '../http/socket-handle.js';

/** What a connection asks of the server that accepted it (h1-server.ts). */
export interface WireHost {
  readonly llhttp: Llhttp;
  /** Header fields kept per request (limits.maxHeaderFields + 1, so the edge sees the limit was passed). */
  readonly maxHeadersCount: number;
  readonly keepAliveLine: string;
  allocParser(): NativeParser;
  freeParser(parser: NativeParser): void;
  /** The connection has a parser: its head and idle deadlines are checked by the server's sweep. */
  watch(wire: H1Wire): void;
  /** Nothing more is parsed on it (closed, upgraded, a held stream): out of the sweep. */
  unwatch(wire: H1Wire): void;
  wireClosed(wire: H1Wire): void;
  /** Node's http.Server events, with this engine's request and response. */
  emit(event: 'request' | 'checkContinue' | 'checkExpectation', req: H1Request | H1BodyRequest, res: H1Response): boolean;
  emit(event: 'upgrade' | 'connect', req: H1Request | H1BodyRequest, socket: Socket, head: Buffer): boolean;
  emit(event: 'clientError', err: Error, socket: Socket): boolean;
}

const kWire = Symbol('holdfast.h1Wire');
type WireParser = NativeParser & { [kWire]?: H1Wire | null };

/** RFC 9110 §10.1.1, as Node matches it. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * One client connection of the edge's HTTP/1 engine: llhttp fed straight from the socket's handle (so reads
 * never become JavaScript buffers unless they carry a body), requests handed to the edge as they are parsed,
 * and their responses written strictly in order: the front response owns the socket, the ones behind it keep
 * their bytes until their turn. Persistence is Node's: a response that says `Connection: close` (or cannot
 * be delimited otherwise) ends the connection after it; a client's FIN closes it after the answers it is
 * owed (RFC 9112 §9.6); an idle connection closes after keepAliveIdleMs.
 */
export class H1Wire implements ResponseWire {
  readonly socket: Socket;
  readonly #host: WireHost;
  #parser: WireParser | null;
  #consumed = false;
  /** Responses in request order: the first holds the socket. */
  #responses: H1Response[] = [];
  /** The request whose body is being parsed. */
  #body: H1BodyRequest | null = null;
  /** Header fields llhttp handed over before the head was complete (more than 32 of them). */
  #fields: string[] = [];
  #url = '';
  /** An upgrade (or CONNECT) request: the bytes after its head belong to the new protocol. */
  #upgrade: H1Request | H1BodyRequest | null = null;
  /** Reading stopped because a body's consumer is full. */
  #bodyFull = false;
  #gone = false;
  /**
   * When the head now awaited began (its first byte, or the connection's start), 0 when none is awaited;
   * when the connection went idle, 0 while it is not. Plain numbers the server's sweep reads: a timer per
   * connection, re-armed on every request, cost more than the rest of the engine's bookkeeping.
   */
  headSinceMs: number;
  idleSinceMs = 0;
  /** Responses whose last bytes are written and not yet confirmed, in write order. */
  #ending: H1Response[] = [];
  readonly endWritten: (err?: Error | null) => void;

  constructor(socket: Socket, host: WireHost) {
    this.socket = socket;
    this.#host = host;
    const parser = host.allocParser() as WireParser;
    parser[kWire] = this;
    parser[host.llhttp.kOnMessageBegin] = parserOnMessageBegin;
    parser[host.llhttp.kOnHeaders] = parserOnHeaders;
    parser[host.llhttp.kOnHeadersComplete] = parserOnHeadersComplete;
    parser[host.llhttp.kOnBody] = parserOnBody;
    parser[host.llhttp.kOnMessageComplete] = parserOnMessageComplete;
    parser[host.llhttp.kOnExecute] = parserOnExecute;
    this.#parser = parser;
    socket.on('end', wireOnEnd);
    socket.on('close', wireOnClose);
    socket.on('drain', wireOnDrain);
    socket.on('error', wireOnError);
    (socket as WireSocket)[kWire] = this;
    // A connection handed back with bytes already read (after a peek or a refused upgrade) is read as a
    // stream: the handle cannot see what is in the socket's buffer.
    if (consumeHandle(socket, parser)) this.#consumed = true;
    else {
      socket.on('data', wireOnData);
      socket.resume();
    }
    this.headSinceMs = Date.now();
    this.endWritten = (err) => this.#ending.shift()?.finishWrite(err);
    host.watch(this);
  }

  /** Whether this connection still has a request parser (a held stream or an upgrade gave it back). */
  get parsing(): boolean {
    return this.#parser !== null;
  }

  /** Whether the socket is being read (the edge stops reading a deep pipeline, the engine a full body). */
  get reading(): boolean {
    return this.#consumed ? handleReading(this.socket) : !this.socket.isPaused();
  }

  get keepAliveLine(): string {
    return this.#host.keepAliveLine;
  }

  // -- parser events (called with the parser as `this`, see below) --

  messageBegin(): void {
    this.idleSinceMs = 0;
    this.headSinceMs = Date.now();
  }

  headers(fields: string[], url: string): void {
    if (this.#fields.length < this.#host.maxHeadersCount * 2) for (const f of fields) this.#fields.push(f);
    this.#url += url;
  }

  headersComplete(
    major: number,
    minor: number,
    fields: string[] | undefined,
    method: number,
    url: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    this.headSinceMs = 0;
    if (fields === undefined) {
      fields = this.#fields;
      this.#fields = [];
    }
    if (url === undefined) {
      url = this.#url;
      this.#url = '';
    }
    const max = this.#host.maxHeadersCount * 2;
    if (fields.length > max) fields.length = max;
    const name = this.#host.llhttp.methods[method] ?? 'GET';
    if (upgrade) {
      // Node's answer to llhttp (2): skip the body, the rest of the connection is the new protocol's.
      this.#upgrade = new H1Request(name, url, fields, major, minor, this.socket);
      return 2;
    }
    let req: H1Request | H1BodyRequest;
    const { hasBody, expect } = framing(fields);
    if (hasBody) {
      const body = new H1BodyRequest(name, url, fields, major, minor, this.socket, () => this.#bodyWanted());
      this.#body = body;
      req = body;
    } else req = new H1Request(name, url, fields, major, minor, this.socket);
    const expectsContinue = expect !== undefined && major === 1 && minor === 1 && CONTINUE.test(expect);
    const res = new H1Response(req, this, keepAlive, expectsContinue);
    this.#responses.push(res);
    if (this.#responses.length === 1) res.assignSocket(this.socket);
    if (expect === undefined || major !== 1 || minor !== 1) this.#host.emit('request', req, res);
    else this.#host.emit(expectsContinue ? 'checkContinue' : 'checkExpectation', req, res);
    return 0;
  }

  body(chunk: Buffer): void {
    const req = this.#body;
    if (req !== null && !req.pushBody(chunk)) this.#stopForBody();
  }

  messageComplete(): void {
    // Trailer fields of a chunked body arrive as headers() after the head (Node adds them to the request;
    // we forward none): they must not become the head of the next request.
    if (this.#fields.length > 0) this.#fields = [];
    this.#url = '';
    const req = this.#body;
    if (req === null) return;
    this.#body = null;
    req.endBody();
    if (this.#bodyFull) this.#bodyWanted();
  }

  /** After each read the parser took (consumed handle), or each `data` chunk: errors and upgrades. */
  executed(ret: number | ParseError, chunk: Buffer | null): void {
    if (typeof ret !== 'number') {
      // llhttp stays failed: each further read reports the error again, as Node's server does (the edge
      // ignores those while it lingers).
      const packet = chunk ?? this.#parser?.getCurrentBuffer();
      if (packet !== undefined) ret.rawPacket = packet;
      this.#host.emit('clientError', ret, this.socket);
      return;
    }
    const upgrade = this.#upgrade;
    if (upgrade === null) return;
    this.#upgrade = null;
    const data = chunk ?? this.#parser!.getCurrentBuffer();
    const rest = data.subarray(ret);
    this.#detach();
    if (this.#responses.length === 0) {
      // Nothing of HTTP/1 is left on the connection: the new protocol owns it, or (an upgrade that is not a
      // WebSocket, served as a plain request) a new wire takes it over. Let go of it entirely.
      this.#gone = true;
      this.socket.removeListener('close', wireOnClose);
      // An error no one listens for would be thrown: the new owner adds its own handling.
      this.socket.removeListener('error', wireOnError);
      this.socket.on('error', discard);
      delete (this.socket as WireSocket)[kWire];
      this.#host.wireClosed(this);
    }
    this.#host.emit(upgrade.method === 'CONNECT' ? 'connect' : 'upgrade', upgrade, this.socket, Buffer.from(rest));
  }

  // -- ResponseWire --

  awaitEndWritten(res: H1Response): void {
    this.#ending.push(res);
  }

  responseEnded(res: H1Response): void {
    const responses = this.#responses;
    if (responses[0] === res) responses.shift();
    else {
      const at = responses.indexOf(res);
      if (at >= 0) responses.splice(at, 1);
    }
    if (res.req instanceof H1BodyRequest && !res.req.complete) res.req.dump();
    if (res.last) {
      this.#closeAfterWrites();
      return;
    }
    const next = responses[0];
    if (next !== undefined) next.assignSocket(this.socket);
    else if (this.#body === null && !this.#gone) this.#idle();
  }

  releaseParser(res: H1Response): boolean {
    const parser = this.#parser;
    if (parser === null || this.#responses.length !== 1 || this.#responses[0] !== res) return false;
    if (!res._headerSent || res.writableEnded || this.#body !== null || !res.req.complete) return false;
    res.last = true;
    this.#detach();
    // A held stream lives for hours: the queues keep only what they hold now, not the backing stores the
    // requests before it grew (a few hundred bytes of a held connection's ~7 KB).
    this.#responses = [res];
    if (this.#ending.length === 0) this.#ending = [];
    this.#fields = [];
    // Keep reading so the client's FIN is seen (client-fin.ts); what it sends is dropped.
    this.socket.on('data', discard);
    this.socket.resume();
    return true;
  }

  // -- socket events --

  ended(): void {
    const parser = this.#parser;
    if (parser !== null) {
      const ret = parser.finish();
      if (ret instanceof Error) {
        this.executed(ret, null);
        return;
      }
    }
    const responses = this.#responses;
    if (responses.length > 0) responses[responses.length - 1]!.last = true;
    else if (this.socket.writable) this.socket.end();
  }

  closed(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#host.wireClosed(this);
    const body = this.#body;
    this.#body = null;
    // As Node's IncomingMessage: the error is emitted only to a reader listening for it (undici is).
    if (body !== null && !body.complete && !body.destroyed) body.destroy(body.listenerCount('error') > 0 ? abortedError() : undefined);
    const responses = this.#responses.splice(0);
    for (const res of responses) res.socketClosed();
    this.#detach();
  }

  drained(): void {
    this.#responses[0]?.onSocketDrain();
  }

  errored(err: Error): void {
    if (this.#gone) return;
    this.socket.removeListener('error', wireOnError);
    this.socket.on('error', discard);
    this.#host.emit('clientError', err, this.socket);
  }


  /** A held stream or an upgrade: nothing more is parsed here. */
  #detach(): void {
    const parser = this.#parser;
    if (parser === null) return;
    this.#parser = null;
    this.headSinceMs = 0;
    this.idleSinceMs = 0;
    this.#host.unwatch(this);
    const socket = this.socket;
    socket.removeListener('data', wireOnData);
    socket.removeListener('end', wireOnEnd);
    socket.removeListener('drain', wireOnDrain);
    if (this.#consumed) {
      this.#consumed = false;
      unconsumeHandle(socket, parser);
    }
    parser[kWire] = null;
    this.#host.freeParser(parser);
  }

  #idle(): void {
    if (this.#parser !== null) this.idleSinceMs = Date.now();
  }

  /** After the last answer: ends the socket once written (the edge may have made that a lingering close). */
  #closeAfterWrites(): void {
    const socket = this.socket;
    const pending = this.#responses.splice(0);
    for (const res of pending) res.socketClosed();
    this.#detach();
    socket.destroySoon();
  }

  #stopForBody(): void {
    if (this.#bodyFull) return;
    this.#bodyFull = true;
    if (this.#consumed) stopReadingHandle(this.socket);
    // Paused as a stream too (as Node's server marks it), so `isPaused()` tells the truth to the stall watch.
    this.socket.pause();
  }

  #bodyWanted(): void {
    if (!this.#bodyFull) return;
    this.#bodyFull = false;
    if (this.socket.destroyed) return;
    this.socket.resume();
    if (this.#consumed) startReadingHandle(this.socket);
  }

  /** Data-path reads (the handle could not be consumed). */
  feed(chunk: Buffer): void {
    const parser = this.#parser;
    if (parser === null) return;
    const ret = parser.execute(chunk);
    this.executed(ret, chunk);
  }
}

type WireSocket = Socket & { [kWire]?: H1Wire };

// Parser callbacks: one function each for every connection (no closures), finding the wire on the parser.
function parserOnMessageBegin(this: WireParser): number {
  this[kWire]?.messageBegin();
  return 0;
}
function parserOnHeaders(this: WireParser, fields: string[], url: string): void {
  this[kWire]?.headers(fields, url);
}
function parserOnHeadersComplete(
  this: WireParser,
  major: number,
  minor: number,
  fields: string[] | undefined,
  method: number,
  url: string | undefined,
  _status: unknown,
  _statusText: unknown,
  upgrade: boolean,
  keepAlive: boolean,
): number {
  return this[kWire]?.headersComplete(major, minor, fields, method, url, upgrade, keepAlive) ?? 0;
}
function parserOnBody(this: WireParser, chunk: Buffer): void {
  this[kWire]?.body(chunk);
}
function parserOnMessageComplete(this: WireParser): void {
  this[kWire]?.messageComplete();
}
function parserOnExecute(this: WireParser, ret: number | ParseError): void {
  this[kWire]?.executed(ret, null);
}

function wireOnData(this: WireSocket, chunk: Buffer): void {
  this[kWire]?.feed(chunk);
}
function wireOnEnd(this: WireSocket): void {
  this[kWire]?.ended();
}
function wireOnClose(this: WireSocket): void {
  this[kWire]?.closed();
}
function wireOnDrain(this: WireSocket): void {
  this[kWire]?.drained();
}
function wireOnError(this: WireSocket, err: Error): void {
  this[kWire]?.errored(err);
}
function discard(): void {}

/**
 * What the engine must know of a head before handing it on, in one pass over its fields: whether a body
 * follows (RFC 9112 §6.3: Transfer-Encoding, or a Content-Length above 0; llhttp has already refused
 * conflicting framing) and the Expect field. The edge's own checks (request-checks.ts) read the same fields
 * for their own rules.
 */
function framing(fields: readonly string[]): { hasBody: boolean; expect: string | undefined } {
  let hasBody = false;
  let expect: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    switch (name.length) {
      case 6:
        if (expect === undefined && name.toLowerCase() === 'expect') expect = fields[i + 1];
        break;
      case 14:
        if (name.toLowerCase() === 'content-length' && Number(fields[i + 1]) > 0) hasBody = true;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') hasBody = true;
        break;
    }
  }
  return { hasBody, expect };
}

/** What Node's IncomingMessage is destroyed with when its connection closes mid-body. */
function abortedError(): Error {
  const err = new Error('aborted') as Error & { code: string };
  err.code = 'ECONNRESET';
  return err;
}
