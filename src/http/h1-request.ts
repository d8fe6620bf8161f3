import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';

/**
 * An HTTP/1 request as the edge's own engine hands it on (src/edge/h1-server.ts): the fields of Node's
 * IncomingMessage that Holdfast reads, and nothing built that nobody reads. A request without a body is a
 * plain object (no stream: most requests are GETs); one with a body is a Readable of it, since undici and
 * the unpooled path take the body as a stream. Both are typed as IncomingMessage where the rest of Holdfast
 * (written against Node's objects, which the fallback engine still hands over) takes them: method, url,
 * rawHeaders (as received, at most limits.maxHeaderFields + 1 pairs), httpVersion*, socket, complete.
 */

/** The body-less request: what it says is all there is. */
export class H1Request {
  method: string;
  url: string;
  rawHeaders: string[];
  httpVersionMajor: number;
  httpVersionMinor: number;
  httpVersion: string;
  socket: Socket;
  complete = true;
  // What a consumed, empty IncomingMessage says, for code that asks any request.
  readonly readableLength = 0;
  readonly readableDidRead = false;
  readonly destroyed = false;
  readonly errored = null;
  #headers: IncomingHttpHeaders | null = null;

  constructor(method: string, url: string, rawHeaders: string[], major: number, minor: number, socket: Socket) {
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.httpVersion = httpVersionText(major, minor);
    this.socket = socket;
  }

  /** Built on first use only: the proxy path reads rawHeaders (headers.ts), WebSocket handshakes read this. */
  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headersObject(this.rawHeaders));
  }

  resume(): this {
    return this;
  }
}

/**
 * A request with a body: the body is this stream's content. The engine pushes what llhttp decodes (chunked
 * framing already removed) and stops reading the socket while the stream is full; reading it on resumes.
 */
// The same request-line fields as H1Request, declared again rather than shared through a base: the body-less
// request must not be a stream, and the one with a body must be one.
export class H1BodyRequest extends Readable {
  method: string;
  url: string;
  rawHeaders: string[];
  httpVersionMajor: number;
  httpVersionMinor: number;
  httpVersion: string;
  socket: Socket;
  complete = false;
  /** Nobody will read the rest of the body (its answer is out): what arrives is dropped, not buffered. */
  dumped = false;
  readonly #onRead: () => void;
  #headers: IncomingHttpHeaders | null = null;

  /** `onRead`: the consumer wants more, so the socket may be read again. */
  constructor(method: string, url: string, rawHeaders: string[], major: number, minor: number, socket: Socket, onRead: () => void) {
    super();
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.httpVersion = httpVersionText(major, minor);
    this.socket = socket;
    this.#onRead = onRead;
  }

  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headersObject(this.rawHeaders));
  }

  override _read(): void {
    this.#onRead();
  }

  /** Body bytes from the parser. False: the stream is full, stop reading the socket. */
  pushBody(chunk: Buffer): boolean {
    if (this.dumped || this.destroyed) return true;
    return this.push(chunk);
  }

  /** The whole body has arrived. */
  endBody(): void {
    this.complete = true;
    if (!this.dumped && !this.destroyed) this.push(null);
  }

  /** Drop the rest of the body as it arrives (Node's IncomingMessage._dump): the connection can go on. */
  dump(): void {
    if (this.dumped) return;
    this.dumped = true;
    if (!this.destroyed) {
      this.removeAllListeners('data');
      this.resume();
    }
  }
}

/** The version as IncomingMessage spells it, without a string built per request for the two common ones. */
function httpVersionText(major: number, minor: number): string {
  if (major === 1) {
    if (minor === 1) return '1.1';
    if (minor === 0) return '1.0';
  }
  return `${major}.${minor}`;
}

/**
 * Fields that keep their first value when repeated, as Node's IncomingMessage does (a second Content-Type
 * or Authorization is not joined into the first); Set-Cookie is a list, Cookie joins with "; ".
 */
const FIRST_WINS = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires',
]);

function headersObject(raw: readonly string[]): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const seen = headers[name];
    if (seen === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (seen as string[]).push(value);
    else if (FIRST_WINS.has(name)) continue;
    else headers[name] = `${seen as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return headers;
}
