import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionBytes {
  /** Connections accepted so far. */
  readonly count: number;
  /** The first request head that arrived on connection `n` (0-based), without its CRLFCRLF. */
  head(n: number): string;
  /** Bytes after that head on connection `n`: how much of a body was forwarded, whatever its framing. */
  bodyBytes(n: number): number;
}

/**
 * Records every byte each connection of a Node http backend received, below its parser, so a test can tell
 * how much of an upload reached the backend even when the backend answered without reading it.
 */
export function recordConnectionBytes(server: HttpServer): ConnectionBytes {
  const received: Buffer[][] = [];
  server.on('connection', (socket: Socket) => {
    const chunks: Buffer[] = [];
    received.push(chunks);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  });
  const split = (n: number): { all: Buffer; end: number } => {
    const all = Buffer.concat(received[n] ?? []);
    return { all, end: all.indexOf('\r\n\r\n') };
  };
  return {
    get count() {
      return received.length;
    },
    head(n) {
      const { all, end } = split(n);
      return all.subarray(0, Math.max(0, end)).toString('latin1');
    },
    bodyBytes(n) {
      const { all, end } = split(n);
      return end < 0 ? 0 : all.length - end - 4;
    },
  };
}
