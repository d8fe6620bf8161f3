import { createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { listen } from './listen.js';

export interface RawBackend {
  url: string;
  /** Every request head exactly as it arrived, without its final CRLFCRLF. */
  heads: string[];
  /** TCP connections accepted. */
  readonly connections: number;
}

/**
 * A raw `net` backend for bytes Node's http server would not send: `onRequest` gets the socket once a whole
 * request head has arrived (bodies are not read) and writes whatever the test needs.
 */
export async function startRawBackend(
  t: TestContext,
  onRequest: (socket: Socket, head: string) => void,
): Promise<RawBackend> {
  const heads: string[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        heads.push(head);
        onRequest(socket, head);
      }
    });
  });
  const port = await listen(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    get connections() {
      return connections;
    },
  };
}
