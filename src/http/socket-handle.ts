import type { Socket } from 'node:net';

/**
 * The socket's libuv handle, reached past net.Socket for two things its public API cannot do: stop and
 * restart reading at the handle (socket.pause() only stops the stream's flow, and Node's HTTP server
 * resumes paused sockets by itself), and handing the handle to a native parser that reads it directly
 * (llhttp's consume, as Node's own server does). Node documents none of it, so every use is here, each
 * checks the shape it needs, and each answers "not done" rather than throwing when a Node lacks it: reading
 * is then paused at the stream, and a parser is fed from `data` events.
 */
interface StreamHandle {
  isStreamBase?: boolean;
  /** Node's own mark for a handle a parser consumes (_http_server.js). */
  _consumed?: boolean;
  reading?: boolean;
  readStop?: () => number;
  readStart?: () => number;
}

type HandleSocket = Socket & { _handle?: StreamHandle | null };

function handleOf(socket: Socket): StreamHandle | null {
  return (socket as HandleSocket)._handle ?? null;
}

/** Stop reading at the handle. False when there was nothing to stop or no handle to stop it at. */
export function stopReadingHandle(socket: Socket): boolean {
  const handle = handleOf(socket);
  if (handle === null || handle.reading !== true || typeof handle.readStop !== 'function') return false;
  handle.reading = false;
  handle.readStop();
  return true;
}

/** Read again at the handle, if it was stopped there. */
export function startReadingHandle(socket: Socket): void {
  const handle = handleOf(socket);
  if (handle === null || handle.reading !== false || typeof handle.readStart !== 'function') return;
  handle.reading = true;
  handle.readStart();
}

/** Whether the handle is being read (true when there is no handle to ask). */
export function handleReading(socket: Socket): boolean {
  return handleOf(socket)?.reading !== false;
}

/**
 * Give the handle to `parser` (llhttp's consume), when it can take it: a stream-base handle no parser has,
 * and no bytes already read into the socket's stream buffer, which the handle cannot see. Returns whether
 * it did; when not, the caller feeds the parser from `data` events.
 */
export function consumeHandle(socket: Socket, parser: { consume(handle: object): void }): boolean {
  const handle = handleOf(socket);
  if (socket.readableLength !== 0 || handle === null || handle.isStreamBase !== true || handle._consumed === true) return false;
  handle._consumed = true;
  parser.consume(handle);
  return true;
}

/** Take the handle back from `parser`: reads become `data` events again. */
export function unconsumeHandle(socket: Socket, parser: { unconsume(): void }): void {
  parser.unconsume();
  const handle = handleOf(socket);
  if (handle !== null) handle._consumed = false;
}
