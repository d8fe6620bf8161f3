import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { WebSocketContext } from '@fanoutio/grip';
import { ServeGrip } from '@fanoutio/serve-grip';
import { WebSocket, WebSocketServer, type ClientOptions, type ServerOptions } from 'ws';
import { startBackend, type RecordingBackend } from '../helpers/backend.js';
import { listen } from '../helpers/listen.js';
import { startRawBackend } from '../helpers/raw-backend.js';
import { until, within } from '../helpers/until.js';

/** One message as ws delivered it. */
export interface Received {
  data: Buffer;
  isBinary: boolean;
}

/**
 * A WebSocket client whose events are queued, so a test awaits the next message or the close instead of
 * wiring callbacks (and never misses one that came early).
 */
export class WsClient {
  readonly ws: WebSocket;
  readonly messages: Received[] = [];
  closeCode: number | undefined;
  closeReason = '';
  #waiters: (() => void)[] = [];

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push({ data, isBinary });
      this.#wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.#wake();
    });
    ws.on('error', () => this.#wake());
  }

  static async open(t: TestContext, url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WsClient> {
    const ws = new WebSocket(url, protocols, options);
    const client = new WsClient(ws);
    t.after(() => ws.terminate());
    const opened = new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res: IncomingMessage) => reject(new Error(`handshake answered ${res.statusCode}`)));
      ws.once('error', reject);
    });
    await within(opened, 10_000, `the handshake to ${url}`);
    return client;
  }

  async next(): Promise<Received> {
    await this.until(() => this.messages.length > 0 || this.closeCode !== undefined, 'a message');
    const m = this.messages.shift();
    if (m === undefined) throw new Error(`closed (${this.closeCode}) before a message came`);
    return m;
  }

  async nextText(): Promise<string> {
    return (await this.next()).data.toString('utf8');
  }

  async closed(): Promise<{ code: number; reason: string }> {
    await this.until(() => this.closeCode !== undefined, 'the close');
    return { code: this.closeCode!, reason: this.closeReason };
  }

  /** Bounded: fails naming `what` when no event has moved it for `idleMs` of real time. */
  async until(condition: () => boolean, what: string, idleMs = 10_000): Promise<void> {
    while (!condition()) {
      if (this.ws.readyState === WebSocket.CLOSED && this.closeCode === undefined) throw new Error(`socket gone waiting for ${what}`);
      await within(new Promise<void>((resolve) => this.#waiters.push(resolve)), idleMs, what);
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

export interface WsBackend {
  server: Server;
  wss: WebSocketServer;
  url: string;
  port: number;
  /** Handshake requests, as the backend saw them. */
  handshakes: IncomingMessage[];
  /** Server-side sockets, in order of connection. */
  sockets: WebSocket[];
  /** Close codes and reasons the backend received. */
  closes: { code: number; reason: string }[];
  /** Every message the backend received. */
  received: Received[];
}

/** A ws echo server on loopback: every message comes back as it was (text stays text, binary binary). */
export async function startWsEchoBackend(t: TestContext, options: ServerOptions = {}): Promise<WsBackend> {
  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('websocket only\n');
  });
  const wss = new WebSocketServer({ server, ...options });
  const backend: WsBackend = { server, wss, url: '', port: 0, handshakes: [], sockets: [], closes: [], received: [] };
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    backend.handshakes.push(req);
    backend.sockets.push(ws);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      backend.received.push({ data, isBinary });
      if (data.length > 0 && data.toString('latin1', 0, Math.min(data.length, 6)) === 'close:') {
        const code = Number(data.toString().slice(6));
        ws.close(code, 'from backend');
        return;
      }
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code: number, reason: Buffer) => backend.closes.push({ code, reason: reason.toString() }));
  });
  await listen(t, server);
  backend.port = (server.address() as AddressInfo).port;
  backend.url = `http://127.0.0.1:${backend.port}`;
  return backend;
}

/** A client handshake as raw bytes (key fixed: tests compare bytes). */
export function handshake(path: string, extra: string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: app.test',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** A masked client frame (RFC 6455 §5.2), for raw-socket tests. */
export function clientFrame(opcode: number, payload: Buffer | string, options: { fin?: boolean; rsv?: number } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const fin = options.fin ?? true;
  const first = (fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode;
  let header: Buffer;
  if (data.length < 126) header = Buffer.from([first, 0x80 | data.length]);
  else if (data.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(data.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

export { until };

export { listen };

/** What @fanoutio/grip's WebSocketContext.recv() throws on a DISCONNECT event. */
const CLIENT_DISCONNECTED = 'Client disconnected unexpectedly.';

/** A WebSocket-over-HTTP backend on a raw socket, for answers Node's server would not send. */
export interface RawOverHttpBackend {
  url: string;
  /** POSTs received, the OPEN included. */
  readonly posts: number;
}

/**
 * Accepts the OPEN, then hands each later POST's socket to `onPost` (the POST's number, from 2). The OPEN's
 * answer closes its connection: the raw backend reads no bodies, so one POST per connection keeps heads apart.
 */
export async function startRawOverHttpBackend(t: TestContext, onPost: (socket: Socket, n: number) => void): Promise<RawOverHttpBackend> {
  let posts = 0;
  const backend = await startRawBackend(t, (socket, head) => {
    if (!head.startsWith('POST ')) return;
    posts++;
    if (posts === 1) {
      socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/websocket-events\r\ncontent-length: 6\r\nconnection: close\r\n\r\nOPEN\r\n');
      return;
    }
    onPost(socket, posts);
  });
  return {
    url: backend.url,
    get posts() {
      return posts;
    },
  };
}

export type ContextHandler = (ws: WebSocketContext) => void;

/**
 * A WebSocket-over-HTTP backend written with @fanoutio/serve-grip: every POST gets a WebSocketContext;
 * `onOpen` runs on OPEN, `onMessage` on each message, CLOSE is answered with a close (code 0, js-grip's
 * default), DISCONNECT ends quietly.
 */
export async function startWsOverHttpBackend(
  t: TestContext,
  onOpen: ContextHandler,
  onMessage: (ws: WebSocketContext, message: string) => void = (ws, m) => ws.send(`echo:${m}`),
): Promise<RecordingBackend> {
  // The recording backend reads each body first; serve-grip then reads it again from a copy of the request.
  const serveGrip = new ServeGrip({ grip: { control_uri: 'http://127.0.0.1:9/', verify_iss: 'pushpin', verify_key: 'changeme' } });
  return startBackend(t, async (original, res, body) => {
    const req = Object.assign(Readable.from([body]), {
      headers: original.headers,
      method: original.method,
      url: original.url,
    }) as unknown as IncomingMessage;
    if (!(await serveGrip.run(req, res))) return;
    const ws = req.grip?.wsContext;
    if (ws === undefined || ws === null) {
      res.statusCode = 400;
      res.end('not websocket-over-http\n');
      return;
    }
    if (ws.isOpening()) onOpen(ws);
    try {
      while (ws.canRecv()) {
        const message = ws.recv();
        if (message === null) {
          ws.close();
          break;
        }
        onMessage(ws, message);
      }
    } catch (err) {
      // DISCONNECT: js-grip's recv() says the client is gone, and there is nothing to answer. Anything else (an
      // assertion in a test's handler) must fail the test, not vanish here.
      if ((err as Error).message !== CLIENT_DISCONNECTED) throw err;
    }
    res.end();
  });
}
