import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
// Why http-parser-js: the probe must read several responses back to back on one socket (pipelining, keep-alive)
// and see exactly where each ends (Content-Length, chunked, or the close). Node's http client hands out one
// response per request and never pipelines; undici's Client pipelines but pairs answers with requests itself,
// retries, and hides a close or a dropped answer behind its own errors, which are the very things probed here.
// http-parser-js is a kept, widely used pure-JS response-stream parser (websocket-driver's), so no framing
// code of ours decides what a server did.
import { HTTPParser } from 'http-parser-js';
import type { ProbeTarget } from './target.js';

/** The head of one response, as the server sent it. */
export interface ResponseHead {
  /** "1.1", "1.0". */
  httpVersion: string;
  status: number;
  reason: string;
  /** Lower-cased names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  /** How the body is delimited. */
  framing: 'content-length' | 'chunked' | 'close-delimited' | 'none';
  /** Milliseconds from the connection's open to the end of this head. */
  atMs: number;
}

export interface ProbeResponse extends ResponseHead {
  body: Buffer;
}

/** One response as it arrives: the body so far, and whether it is complete. */
export interface IncomingResponse {
  head: ResponseHead;
  chunks: Buffer[];
  complete: boolean;
  /** Called with each body chunk after it arrives (for streams read while they last). */
  onChunk: ((chunk: Buffer) => void) | undefined;
}

/** What a bounded wait on the connection came to. */
export type Waited<T> =
  | { kind: 'ok'; value: T }
  /** The server ended the connection (FIN or reset) first. */
  | { kind: 'closed'; reset: boolean }
  | { kind: 'timeout' }
  /** The bytes could not be parsed as HTTP responses. */
  | { kind: 'unparseable'; message: string };

/** The server cannot be reached at all: the probe did not run. */
export class ProbeUnreachableError extends Error {}

/**
 * One TCP (or TLS) connection the probe writes raw requests on and reads responses from, in order.
 * Every wait is bounded by the caller's timeout and reports a close, a timeout or a parse failure as such.
 */
export class ProbeConnection {
  readonly socket: Socket;
  readonly #openedAt: number;
  readonly #responses: IncomingResponse[] = [];
  #nextToRead = 0;
  #parser = new HTTPParser(HTTPParser.RESPONSE);
  #endedAtMs: number | undefined;
  #reset = false;
  #parseError: string | undefined;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#openedAt = performance.now();
    this.#parser[HTTPParser.kOnHeadersComplete] = (info) => {
      const headers: Record<string, string> = {};
      for (let i = 0; i + 1 < info.headers.length; i += 2) {
        const name = info.headers[i]!.toLowerCase();
        const value = info.headers[i + 1]!;
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      this.#responses.push({ head: { ...headOf(info, headers), atMs: this.elapsedMs() }, chunks: [], complete: false, onChunk: undefined });
      this.#wake();
    };
    this.#parser[HTTPParser.kOnBody] = (chunk, offset, length) => {
      const current = this.#responses.at(-1);
      if (current === undefined) return;
      // The parser hands out views of the socket's buffer: copy what is kept.
      const copy = Buffer.from(chunk.subarray(offset, offset + length));
      current.chunks.push(copy);
      current.onChunk?.(copy);
      this.#wake();
    };
    this.#parser[HTTPParser.kOnMessageComplete] = () => {
      const current = this.#responses.at(-1);
      if (current !== undefined) current.complete = true;
      this.#wake();
    };
    socket.on('data', (chunk: Buffer) => connectionOnData(this, chunk));
    socket.on('end', () => connectionOnEnd(this));
    socket.on('close', () => connectionOnEnd(this));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') this.#reset = true;
      connectionOnEnd(this);
    });
  }

  /** Connects within `timeoutMs`, or throws ProbeUnreachableError naming the reason. */
  static async open(target: ProbeTarget, timeoutMs: number): Promise<ProbeConnection> {
    const socket = target.tls
      ? // RFC 6066 §3: SNI names a host, never an address.
        tlsConnect({ host: target.host, port: target.port, ...(isIP(target.host) === 0 ? { servername: target.host } : {}), ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const connectEvent = target.tls ? 'secureConnect' : 'connect';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ProbeUnreachableError(`cannot connect to ${target.host}:${target.port}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once(connectEvent, () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new ProbeUnreachableError(`cannot connect to ${target.host}:${target.port}: ${err.code ?? err.message}`));
      });
    });
    return new ProbeConnection(socket);
  }

  elapsedMs(): number {
    return performance.now() - this.#openedAt;
  }

  /** The server ended the connection (FIN, reset or error). */
  get ended(): boolean {
    return this.#endedAtMs !== undefined;
  }

  /** When it ended, in ms since open. */
  get endedAtMs(): number | undefined {
    return this.#endedAtMs;
  }

  /** Writes request bytes; false when the connection is already gone (nothing sent). */
  send(bytes: string): boolean {
    if (this.ended || this.socket.destroyed || this.socket.writableEnded) return false;
    this.socket.write(bytes);
    return true;
  }

  /** The next response's head, as soon as it is in; the response stays next for nextResponse(). */
  async nextHead(timeoutMs: number): Promise<Waited<IncomingResponse>> {
    const waited = await this.#waitFor(() => this.#responses[this.#nextToRead] !== undefined, timeoutMs);
    if (waited !== undefined) return waited;
    return { kind: 'ok', value: this.#responses[this.#nextToRead]! };
  }

  /** The next whole response, body included. */
  async nextResponse(timeoutMs: number): Promise<Waited<ProbeResponse>> {
    const waited = await this.#waitFor(() => this.#responses[this.#nextToRead]?.complete === true, timeoutMs);
    if (waited !== undefined) return waited;
    const incoming = this.#responses[this.#nextToRead++]!;
    return { kind: 'ok', value: { ...incoming.head, body: Buffer.concat(incoming.chunks) } };
  }

  /** Resolves when the server ends the connection, or on timeout. */
  async waitEnd(timeoutMs: number): Promise<Waited<number>> {
    const waited = await this.#waitFor(() => false, timeoutMs);
    if (waited?.kind === 'closed') return { kind: 'ok', value: this.#endedAtMs! };
    return waited ?? { kind: 'timeout' };
  }

  /** Resolves when `condition` holds (checked on every byte, close and timeout), on the end, or on timeout. */
  async waitUntil(condition: () => boolean, timeoutMs: number): Promise<Waited<true>> {
    return (await this.#waitFor(condition, timeoutMs)) ?? { kind: 'ok', value: true };
  }

  close(): void {
    this.socket.destroy();
  }

  /** For the module-level socket handlers. */
  feed(chunk: Buffer): void {
    if (this.#parseError !== undefined) return;
    const result = this.#parser.execute(chunk);
    if (result instanceof Error) this.#failParse(result);
    this.#wake();
  }

  markEnded(): void {
    if (this.#endedAtMs !== undefined) return;
    this.#endedAtMs = this.elapsedMs();
    // A close-delimited body ends here (RFC 9112 §6.3 rule 8).
    if (this.#parseError === undefined) {
      const result = this.#parser.finish();
      if (result instanceof Error && this.#responses.at(-1)?.complete === false) this.#failParse(result);
    }
    this.socket.destroy();
    this.#wake();
  }

  #failParse(err: Error): void {
    this.#parseError = err.message;
    this.socket.destroy();
  }

  /** undefined when `condition` held; otherwise why the wait ended. */
  async #waitFor(condition: () => boolean, timeoutMs: number): Promise<Exclude<Waited<never>, { kind: 'ok' }> | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (condition()) return undefined;
      if (this.#parseError !== undefined) return { kind: 'unparseable', message: this.#parseError };
      if (this.ended) return { kind: 'closed', reset: this.#reset };
      const left = deadline - performance.now();
      if (left <= 0) return { kind: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

function connectionOnData(connection: ProbeConnection, chunk: Buffer): void {
  connection.feed(chunk);
}

function connectionOnEnd(connection: ProbeConnection): void {
  connection.markEnded();
}

interface ParsedInfo {
  versionMajor: number;
  versionMinor: number;
  statusCode: number;
  statusMessage: string;
}

function headOf(info: ParsedInfo, headers: Record<string, string>): Omit<ResponseHead, 'atMs'> {
  const noBody = info.statusCode === 204 || info.statusCode === 304 || (info.statusCode >= 100 && info.statusCode < 200);
  const framing: ResponseHead['framing'] = noBody
    ? 'none'
    : /\bchunked\b/i.test(headers['transfer-encoding'] ?? '')
      ? 'chunked'
      : headers['content-length'] !== undefined
        ? 'content-length'
        : 'close-delimited';
  return {
    httpVersion: `${info.versionMajor}.${info.versionMinor}`,
    status: info.statusCode,
    reason: info.statusMessage,
    headers,
    framing,
  };
}

/** The tokens of a Connection header, lower-cased. */
export function connectionTokens(head: ResponseHead): string[] {
  return (head.headers.connection ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

/** "HTTP/1.1 200, Content-Length 13" and the like, for evidence lines. */
export function describeHead(head: ResponseHead): string {
  const connection = head.headers.connection === undefined ? 'no Connection header' : `Connection: ${head.headers.connection}`;
  return `HTTP/${head.httpVersion} ${head.status}, ${connection}`;
}
