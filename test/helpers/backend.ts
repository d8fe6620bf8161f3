import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  httpVersion: string;
  /** Which backend TCP connection carried it (1-based, in order of accept). */
  connection: number;
  body: Buffer;
}

export interface RecordingBackend {
  server: Server;
  url: string;
  port: number;
  seen: SeenRequest[];
  /** TCP connections the backend accepted. */
  connections: number;
  /** Requests per backend connection, indexed by connection number. */
  requestsPerConnection(): Map<number, number>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

const defaultHandler: Handler = (req, res) => {
  const body = `${req.method} ${req.url}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/**
 * A real HTTP backend on loopback that records every request it got, with its body and the TCP connection
 * it came on, so tests can assert what Holdfast forwarded (or that it forwarded nothing).
 * `bufferBody: false` hands the handler the unread request, for streaming tests.
 */
export async function startBackend(
  t: TestContext,
  handler: Handler = defaultHandler,
  options: { bufferBody?: boolean; keepAliveTimeoutMs?: number } = {},
): Promise<RecordingBackend> {
  const seen: SeenRequest[] = [];
  const connectionIds = new WeakMap<Socket, number>();
  let connections = 0;
  const server = createServer((req, res) => {
    const connection = connectionIds.get(req.socket) ?? 0;
    const record: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      httpVersion: req.httpVersion,
      connection,
      body: Buffer.alloc(0),
    };
    seen.push(record);
    if (options.bufferBody === false) {
      void handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      void handler(req, res, record.body);
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    connectionIds.set(socket, connections);
  });
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    get connections() {
      return connections;
    },
    requestsPerConnection() {
      const counts = new Map<number, number>();
      for (const r of seen) counts.set(r.connection, (counts.get(r.connection) ?? 0) + 1);
      return counts;
    },
  };
}

/** A port that refuses connections: bound, then closed. */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
