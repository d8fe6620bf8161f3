import type { Socket } from 'node:net';

const kHeldWriteError = Symbol('holdfast.heldWriteError');

type HeldSocket = Socket & { [kHeldWriteError]?: Error };
type WriteCallback = (error?: Error | null) => void;

/**
 * A backend that answers before it has read the whole upload (a 413 or 401 right after the head) and then
 * closes sends its response, a FIN, and, because our body bytes sit unread in its buffer, a RST. The
 * response is in our kernel buffer and stays readable after the RST, but if our next body write meets the
 * RST first (EPIPE or ECONNRESET), Node destroys the socket on the write error and the response is never
 * read: the client got a 502 for an answer the backend did give. With a fast upload that was every time,
 * since the client socket is always ready first in the event loop.
 *
 * So a backend socket holds such a write error back, as HAProxy's "error pending" state does: the bytes are
 * dropped (the peer is gone) and the read side carries on. It reads the response if there is one, then ends
 * (EOF or ECONNRESET), and the request fails as it always did when there is none: a genuine reset still
 * gives a 502, and a stale pooled socket is still recognised by its bytesRead.
 */
export function holdWriteErrors(socket: Socket): void {
  const held = socket as HeldSocket;
  // Writable passes the same completion callback to every write of a stream: wrap it once, not per write.
  let callback: WriteCallback | null = null;
  let wrapped: WriteCallback | null = null;
  const holding = (next: WriteCallback): WriteCallback => {
    if (next !== callback) {
      callback = next;
      wrapped = holdPeerGone(held, next);
    }
    return wrapped!;
  };
  // Writable looks both up on the stream at every write, so an own property takes over from the prototype's.
  const write = held._write.bind(held);
  held._write = (chunk: unknown, encoding: BufferEncoding, done: WriteCallback) => {
    if (held[kHeldWriteError] !== undefined) return done();
    write(chunk, encoding, holding(done));
  };
  const writev = held._writev?.bind(held);
  if (writev === undefined) return;
  held._writev = (chunks: { chunk: unknown; encoding: BufferEncoding }[], done: WriteCallback) => {
    if (held[kHeldWriteError] !== undefined) return done();
    writev(chunks, holding(done));
  };
}

/** Errors that mean the peer reset the connection; any other write error is passed on as it is. */
const PEER_GONE = new Set(['EPIPE', 'ECONNRESET']);

function holdPeerGone(socket: HeldSocket, callback: WriteCallback): WriteCallback {
  return (error) => {
    const code = (error as NodeJS.ErrnoException | null | undefined)?.code;
    if (code === undefined || !PEER_GONE.has(code)) return callback(error);
    socket[kHeldWriteError] = error!;
    callback();
  };
}
