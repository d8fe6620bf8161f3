import { connect as http2Connect, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionOptions, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Duplex, Writable } from 'node:stream';
import * as wsModule from 'ws';
import { connect as netConnect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { until, within } from './until.js';

/** A node:http2 client session to `origin` (https://, or http:// for h2c), closed after the test. */
export async function h2Connect(t: TestContext, origin: string, options: ClientSessionOptions & { ca?: string; servername?: string } = {}): Promise<ClientHttp2Session> {
  const session = http2Connect(origin, { rejectUnauthorized: options.ca !== undefined, ...options });
  t.after(() => session.destroy());
  await within(
    new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    }),
    10_000,
    `an HTTP/2 connection to ${origin}`,
  );
  return session;
}

export interface H2Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on the session; resolves with the whole answer. */
export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Answer> {
  const stream = session.request(headers, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  return within(
    new Promise<H2Answer>((resolve, reject) => {
      let responseHeaders: IncomingHttpHeaders = {};
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => (responseHeaders = h));
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: text }));
      stream.on('error', reject);
    }),
    10_000,
    `an answer to ${String(headers[':method'] ?? 'GET')} ${String(headers[':path'])}`,
  );
}

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const H2_ERROR = { NO_ERROR: 0, PROTOCOL_ERROR: 1, REFUSED_STREAM: 7, CANCEL: 8 } as const;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * A byte-level HTTP/2 client for what node:http2's client refuses to send (connection-specific fields, bad
 * pseudo-header fields, more streams than the server allows, garbage). Header blocks are HPACK literals
 * without indexing or Huffman (RFC 7541 §6.2.2), which any decoder must take; frames from the server are
 * parsed, not decoded further: a test reads a refusal from RST_STREAM and GOAWAY codes, and an answer's
 * error code from its DATA (Holdfast's error bodies name it).
 */
export class RawH2 {
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  closed = false;
  #buffer = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => (this.closed = true));
  }

  /** Over TLS with ALPN h2 (`tls: true`), or in the clear (h2c with prior knowledge); sends the preface and SETTINGS. */
  static async connect(t: TestContext, port: number, tls: boolean): Promise<RawH2> {
    const socket: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: 'localhost' })
      : netConnect(port, '127.0.0.1');
    t.after(() => socket.destroy());
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once(tls ? 'secureConnect' : 'connect', resolve);
        socket.once('error', reject);
      }),
      10_000,
      'a connection',
    );
    const raw = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
    await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0, 'the server SETTINGS');
    socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
    return raw;
  }

  /** A HEADERS frame carrying `fields` in this order, pseudo-header fields included. */
  headers(streamId: number, fields: [string, string][], endStream = true): void {
    const block = Buffer.concat(fields.map(([name, value]) => Buffer.concat([Buffer.from([0]), hpackString(name), hpackString(value)])));
    this.socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), streamId, block));
  }

  data(streamId: number, payload: Buffer | string, endStream = true): void {
    this.socket.write(frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, streamId, Buffer.from(payload)));
  }

  rst(streamId: number, code: number): void {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(code);
    this.socket.write(frame(FRAME.RST_STREAM, 0, streamId, payload));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The first frame (already received or to come) that matches. */
  async waitFor(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    await until(() => this.frames.some(match) || this.closed, what);
    const found = this.frames.find(match);
    if (found === undefined) throw new Error(`the connection closed before ${what}`);
    return found;
  }

  /** The RST_STREAM error code for `streamId`, once it comes. */
  async resetCode(streamId: number): Promise<number> {
    const f = await this.waitFor((x) => x.type === FRAME.RST_STREAM && x.streamId === streamId, `RST_STREAM on stream ${streamId}`);
    return f.payload.readUInt32BE(0);
  }

  /** The DATA of one stream, as text, once END_STREAM came. */
  async body(streamId: number): Promise<string> {
    await this.waitFor((f) => f.streamId === streamId && (f.flags & FLAG.END_STREAM) !== 0, `the end of stream ${streamId}`);
    return Buffer.concat(this.frames.filter((f) => f.type === FRAME.DATA && f.streamId === streamId).map((f) => f.payload)).toString('utf8');
  }

  /** GOAWAY's error code, once it comes. */
  async goAwayCode(): Promise<number> {
    const f = await this.waitFor((x) => x.type === FRAME.GOAWAY, 'GOAWAY');
    return f.payload.readUInt32BE(4);
  }

  #onData(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) return;
      this.frames.push({
        type: this.#buffer[3]!,
        flags: this.#buffer[4]!,
        streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buffer.subarray(9, 9 + length),
      });
      this.#buffer = this.#buffer.subarray(9 + length);
    }
  }
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 §5.2: a string literal, not Huffman-coded, its length a 7-bit prefix integer (§5.1). */
function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  const length: number[] = [];
  if (bytes.length < 127) length.push(bytes.length);
  else {
    length.push(127);
    let rest = bytes.length - 127;
    while (rest >= 128) {
      length.push((rest % 128) + 128);
      rest = Math.floor(rest / 128);
    }
    length.push(rest);
  }
  return Buffer.concat([Buffer.from(length), bytes]);
}

interface WsReceiver {
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
interface WsSender {
  send(data: Buffer, options: { binary: boolean; fin: boolean; mask: boolean; compress: boolean; rsv1: boolean }, cb?: () => void): void;
  close(code: number, reason: string, mask: boolean, cb?: () => void): void;
}
/** ws's own frame parser and writer (exported by ws, not typed by @types/ws). */
const { Receiver, Sender } = wsModule as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => WsReceiver;
  Sender: new (socket: Duplex) => WsSender;
};

/**
 * A WebSocket client over one HTTP/2 stream (RFC 8441 extended CONNECT) on a node:http2 session, framed and
 * parsed by ws's Sender and Receiver (masked, as a client's frames must be): no hand-written framing.
 */
export class H2WebSocket {
  readonly stream: ClientHttp2Stream;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly messages: string[] = [];
  /** The close frame the server sent, once it came. */
  closeFrame: { code: number; reason: string } | null = null;
  readonly #sender: WsSender;
  #closeSent = false;

  private constructor(stream: ClientHttp2Stream, headers: IncomingHttpHeaders) {
    this.stream = stream;
    this.headers = headers;
    this.status = Number(headers[':status']);
    this.#sender = new Sender(stream);
    const receiver = new Receiver({ isServer: false, maxPayload: 16 * 1024 * 1024 });
    receiver.on('message', (data) => this.messages.push(data.toString('utf8')));
    // RFC 6455 §5.5.1: a close frame is answered with one (unless this side sent its own first), then the
    // stream ends, as a browser ends its TCP connection.
    receiver.on('conclude', (code, reason) => {
      this.closeFrame = { code, reason: reason.toString('utf8') };
      if (!this.#closeSent) this.#sender.close(code, '', true);
      stream.end();
    });
    receiver.on('error', () => stream.destroy());
    // Only an opened WebSocket carries frames; a refusal's DATA is its body, for the test to read.
    if (this.status === 200) stream.pipe(receiver as unknown as Writable);
  }

  /** CONNECT with :protocol websocket to `path`; resolves with the server's answer (200 opens the WebSocket). */
  static async open(session: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}): Promise<H2WebSocket> {
    const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': path, ':scheme': 'https', 'sec-websocket-version': '13', ...headers }, { endStream: false });
    stream.on('error', () => {}); // a reset is read from rstCode by the tests
    const answer = await within(
      new Promise<IncomingHttpHeaders>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('close', () => reject(new Error(`the stream closed without an answer (RST_STREAM ${stream.rstCode})`)));
      }),
      10_000,
      `an answer to CONNECT ${path}`,
    );
    return new H2WebSocket(stream, answer);
  }

  send(text: string): void {
    this.#sender.send(Buffer.from(text), { binary: false, fin: true, mask: true, compress: false, rsv1: false });
  }

  close(code: number, reason = ''): void {
    this.#closeSent = true;
    this.#sender.close(code, reason, true);
  }

  /** The `n`th message (0-based), once it came. */
  async message(n: number): Promise<string> {
    await until(() => this.messages.length > n || this.stream.closed, `WebSocket message ${n + 1}`);
    const text = this.messages[n];
    if (text === undefined) throw new Error(`the stream closed after ${this.messages.length} messages`);
    return text;
  }
}
