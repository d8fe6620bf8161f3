import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { Publisher, type GripInstruct } from '@fanoutio/grip';
import { ServeGrip } from '@fanoutio/serve-grip';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';
import type { TestHoldfast } from '../helpers/holdfast.js';
import { until, within } from '../helpers/until.js';

/**
 * Shared pieces of the push-gateway tests: a backend built on @fanoutio/serve-grip (the middleware real
 * GRIP backends use), a publisher built on @fanoutio/grip, and a raw-socket client that decodes a held
 * response as it streams in.
 */

/** serve-grip augments node:http's types with `req.grip` and `res.grip`; after `run`, `res.grip` is set. */
export type GripRequest = IncomingMessage;
export type GripResponse = ServerResponse & { grip: { startInstruct(): GripInstruct } };
export type GripHandler = (req: GripRequest, res: GripResponse, body: Buffer) => void | Promise<void>;

/** A plain node:http backend with ServeGrip as its middleware, recording what it saw. */
export async function startGripBackend(t: TestContext, handler: GripHandler): Promise<RecordingBackend> {
  // The control_uri is never used by the backend side; verify key/iss are Pushpin's defaults, as Holdfast's.
  const serveGrip = new ServeGrip({ grip: { control_uri: 'http://127.0.0.1:9/', verify_iss: 'pushpin', verify_key: 'changeme' } });
  return startBackend(t, async (req, res, body) => {
    if (!(await serveGrip.run(req, res))) return;
    await handler(req, res as GripResponse, body);
  });
}

export function publisherFor(hf: TestHoldfast, auth: Record<string, string> = {}): Publisher {
  return new Publisher({ control_uri: hf.controlUrl, ...auth });
}

/** POSTs a raw publish body; returns status, headers and text. */
export async function publishRaw(
  hf: TestHoldfast,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${hf.controlUrl}/publish/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

export function streamItem(channel: string, content: string, id?: string, prevId?: string): Record<string, unknown> {
  return {
    channel,
    ...(id === undefined ? {} : { id }),
    ...(prevId === undefined ? {} : { 'prev-id': prevId }),
    formats: { 'http-stream': { content } },
  };
}

export { until };

/** Waits until `n` clients are held by the gateway (subscribed, timers armed). */
export function heldCount(hf: TestHoldfast, n: number): Promise<void> {
  return until(() => hf.holds.heldCount >= n, `${n} held clients (have ${hf.holds.heldCount})`);
}

/**
 * A raw TCP client for one held response: sends the request bytes we choose and decodes the response head
 * and chunked (or close-delimited) body incrementally, so a test can wait for exact bytes to arrive.
 */
export class HeldStream {
  readonly socket: Socket;
  status = 0;
  headers: Record<string, string> = {};
  #raw = Buffer.alloc(0);
  /** Every byte received, undecoded (latin1), for assertions on framing and what follows a response. */
  rawReceived = '';
  #body = Buffer.alloc(0);
  #headDone = false;
  #chunked = false;
  /** The terminating chunk arrived, or the connection closed. */
  finished = false;
  closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.rawReceived += chunk.toString('latin1');
      this.#raw = Buffer.concat([this.#raw, chunk]);
      this.#parse();
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.finished = true;
      if (!this.#chunked && this.#headDone) this.#body = Buffer.concat([this.#body, this.#raw]);
      this.#wake();
    });
    socket.on('error', () => {
      /* surfaced as close */
    });
  }

  static async open(t: TestContext, port: number, path: string, extraHeaders: string[] = []): Promise<HeldStream> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    t.after(() => socket.destroy());
    const client = new HeldStream(socket);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: app.test\r\n${extraHeaders.map((h) => `${h}\r\n`).join('')}\r\n`);
    return client;
  }

  /** The decoded body so far. */
  get body(): string {
    return this.#body.toString('utf8');
  }

  get bodyBytes(): Buffer {
    return this.#body;
  }

  async waitFor(condition: (body: string) => boolean, what: string): Promise<string> {
    while (!condition(this.body)) {
      if (this.finished) throw new Error(`stream ended before ${what}; body: ${JSON.stringify(this.body)}`);
      await this.#wait(what);
    }
    return this.body;
  }

  waitForText(text: string): Promise<string> {
    return this.waitFor((b) => b.includes(text), JSON.stringify(text));
  }

  async waitHead(): Promise<void> {
    while (!this.#headDone) {
      if (this.closed) throw new Error('closed before the response head');
      await this.#wait('the response head');
    }
  }

  async waitFinished(): Promise<void> {
    while (!this.finished) await this.#wait('the stream to finish');
  }

  /** Until the next bytes or the close; bounded by real time, so a stream that never moves fails by name. */
  #wait(what: string): Promise<void> {
    return within(new Promise<void>((resolve) => this.#waiters.push(resolve)), 30_000, what);
  }

  #parse(): void {
    if (!this.#headDone) {
      const end = this.#raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.#raw.subarray(0, end).toString('latin1').split('\r\n');
      this.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        this.headers[name] = this.headers[name] === undefined ? value : `${this.headers[name]}, ${value}`;
      }
      this.#chunked = (this.headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked');
      this.#headDone = true;
      this.#raw = this.#raw.subarray(end + 4);
    }
    if (!this.#chunked) {
      const length = this.headers['content-length'];
      this.#body = Buffer.concat([this.#body, this.#raw]);
      this.#raw = Buffer.alloc(0);
      if (length !== undefined && this.#body.length >= Number(length)) this.finished = true;
      return;
    }
    for (;;) {
      const lineEnd = this.#raw.indexOf('\r\n');
      if (lineEnd < 0) return;
      const size = parseInt(this.#raw.subarray(0, lineEnd).toString('latin1'), 16);
      if (size === 0) {
        if (this.#raw.length >= lineEnd + 4) this.finished = true;
        return;
      }
      if (this.#raw.length < lineEnd + 2 + size + 2) return;
      this.#body = Buffer.concat([this.#body, this.#raw.subarray(lineEnd + 2, lineEnd + 2 + size)]);
      this.#raw = this.#raw.subarray(lineEnd + 2 + size + 2);
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
