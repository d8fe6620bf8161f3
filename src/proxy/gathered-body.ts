import type { ServerResponse } from 'node:http';
import type { ResponseEncoder } from './compression.js';

/** Bodies of known length up to this are gathered and written with their head in one write. */
export const GATHER_MAX_BYTES = 64 * 1024;

/**
 * A small response of known length, gathered and written head and body in one write, as nginx's
 * proxy_buffering and HAProxy's buffers do. Measured with nginx (sendfile) as the backend: its head and 10 KiB
 * body reach us in separate reads, and writing each piece on arrival doubled the write syscalls toward the
 * client; forwarding a 10 KiB answer cost about twice a 13-byte one (bench/RESULTS.md). The head waits too, so
 * a backend that dies mid-body still gets the client a clean 502 instead of a cut connection.
 */
export class GatheredBody implements ResponseEncoder {
  readonly streaming = false;
  readonly #res: ServerResponse;
  readonly #status: number;
  readonly #reason: string;
  readonly #headers: string[];
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(res: ServerResponse, status: number, reason: string, headers: string[]) {
    this.#res = res;
    this.#status = status;
    this.#reason = reason;
    this.#headers = headers;
  }

  /** Used when the backend declared `length` bytes and the client gets a body at all. */
  static fits(length: number | undefined): length is number {
    return length !== undefined && length > 0 && length <= GATHER_MAX_BYTES;
  }

  write(chunk: Buffer): boolean {
    this.#size += chunk.length;
    this.#chunks.push(chunk);
    return true;
  }

  end(): void {
    const res = this.#res;
    if (res.destroyed) return;
    const chunks = this.#chunks;
    this.#chunks = [];
    try {
      if (this.#reason) res.writeHead(this.#status, this.#reason, this.#headers);
      else res.writeHead(this.#status, this.#headers);
    } catch {
      // A header Node refuses to emit: the answer is unusable.
      res.destroy();
      return;
    }
    res.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.#size));
  }

  destroy(): void {
    this.#chunks = [];
  }
}
