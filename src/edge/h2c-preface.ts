import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** RFC 9113 §3.4: what every HTTP/2 client connection opens with. No HTTP/1 request line starts `PRI * HTTP/2.0`. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface PrefaceRoutes {
  /** The connection opened with the HTTP/2 preface: serve `stream` (the connection, its first bytes included). */
  h2(socket: Socket, stream: Duplex): void;
  /** Anything else: the socket, its first bytes pushed back, for the HTTP/1 server. */
  http1(socket: Socket): void;
}

/**
 * h2c with prior knowledge (RFC 9113 §3.3) on the plain listener, for Holdfast behind a TLS terminator that
 * speaks HTTP/2 to it: the first bytes decide. node:http2's `allowHTTP1` does this only after a TLS
 * handshake (by ALPN), so the plain listener reads until the bytes either stop matching the preface (HTTP/1,
 * usually at the first byte) or complete it (HTTP/2). A connection that sends nothing is closed at
 * `timeoutMs` (the request head deadline), as the HTTP/1 server would.
 *
 * Both servers read sockets natively once they own them, past bytes already read in JavaScript: the HTTP/1
 * server's parser takes what is pushed back (`unshift`), node:http2's session does not, so it is given the
 * socket wrapped in a Duplex (ReadFromStart), which it reads in JavaScript from the first byte on.
 */
export function routeByPreface(socket: Socket, timeoutMs: number, routes: PrefaceRoutes): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    const h2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (h2 && seen.length < PREFACE.length) return;
    socket.off('data', onData);
    socket.off('error', onTimeout);
    socket.off('timeout', onTimeout);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(seen);
    if (h2) routes.h2(socket, new ReadFromStart(socket));
    else routes.http1(socket);
    socket.resume();
  };
  const onTimeout = (): void => {
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('error', onTimeout);
  socket.setTimeout(timeoutMs, onTimeout);
}

/**
 * The socket as a plain Duplex, read through its JavaScript stream (bytes pushed back included). Not
 * `Duplex.from({ readable, writable })`: that turns a destroy without an error into an AbortError.
 */
class ReadFromStart extends Duplex {
  readonly #socket: Socket;

  constructor(socket: Socket) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    // The socket's own error (a reset, say) is the end of the connection, not news for the session.
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#socket.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err: Error | null) => void): void {
    this.#socket.destroy();
    done(err);
  }
}
