import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { within } from './until.js';

/** Longest a raw client waits for a server that sends nothing at all (real time, whatever clock a test fakes). */
const RAW_IDLE_MS = 60_000;

export interface RawResponse {
  status: number;
  reason: string;
  version: string;
  /** Lower-cased names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A raw TCP client: we decide every byte sent, and parse what comes back ourselves, so pipelining,
 * malformed input and half-closes are tested exactly.
 */
export class RawClient {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#ended = true;
      this.#wake();
    });
    socket.on('error', () => {
      /* surfaced as close */
    });
  }

  static async connect(t: TestContext, port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    t.after(() => socket.destroy());
    return client;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  get ended(): boolean {
    return this.#ended;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Everything received so far that no readResponse consumed. */
  get pending(): Buffer {
    return this.#buffer;
  }

  /** Resolves once the server ended its side (FIN or close). */
  async waitEnd(): Promise<void> {
    while (!this.#ended) await this.#wait();
  }

  /** Read one complete response; `head: true` for a response to HEAD (no body). Rejects if the connection ends first. */
  async readResponse(options: { head?: boolean } = {}): Promise<RawResponse> {
    for (;;) {
      const parsed = tryParseResponse(this.#buffer, options.head ?? false, this.#ended);
      if (parsed !== null) {
        this.#buffer = this.#buffer.subarray(parsed.consumed);
        return parsed.response;
      }
      if (this.#ended) throw new Error(`connection ended before a full response; had: ${JSON.stringify(this.#buffer.toString('latin1'))}`);
      await this.#wait();
    }
  }

  async readResponses(n: number): Promise<RawResponse[]> {
    const out: RawResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await this.readResponse());
    return out;
  }

  /** Until the next bytes or the end; bounded, so a server that never answers fails the test by name. */
  #wait(): Promise<void> {
    return within(new Promise((resolve) => this.#waiters.push(resolve)), RAW_IDLE_MS, 'the server to send or end (raw client)');
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

function tryParseResponse(
  buf: Buffer,
  head: boolean,
  ended: boolean,
): { response: RawResponse; consumed: number } | null {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusLine = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
  if (!statusLine) throw new Error(`bad status line: ${lines[0]}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const status = Number(statusLine[2]);
  const bodyStart = headEnd + 4;
  const response = (body: Buffer): RawResponse => ({
    status,
    reason: statusLine[3] ?? '',
    version: statusLine[1]!,
    headers,
    body,
  });
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) {
    return { response: response(Buffer.alloc(0)), consumed: bodyStart };
  }
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
    const chunks: Buffer[] = [];
    let pos = bodyStart;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos);
      if (lineEnd < 0) return null;
      const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1').split(';')[0]!, 16);
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
        if (trailerEnd === lineEnd) return { response: response(Buffer.concat(chunks)), consumed: lineEnd + 4 };
        if (buf.length < lineEnd + 4) return null;
        if (trailerEnd < 0) return null;
        return { response: response(Buffer.concat(chunks)), consumed: trailerEnd + 4 };
      }
      if (buf.length < lineEnd + 2 + size + 2) return null;
      chunks.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      pos = lineEnd + 2 + size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (buf.length < bodyStart + length) return null;
    return { response: response(buf.subarray(bodyStart, bodyStart + length)), consumed: bodyStart + length };
  }
  // Close-delimited.
  if (!ended) return null;
  return { response: response(buf.subarray(bodyStart)), consumed: buf.length };
}
