import type { Socket } from 'node:net';

/** RFC 9113 §3.4: what every HTTP/2 client connection opens with. No HTTP/1 request line starts `PRI * HTTP/2.0`. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface PrefaceRoutes {
  /**
   * The connection opened with the HTTP/2 preface: the socket, paused, its first bytes pushed back, for
   * node:http2 to take over natively. Nothing may read it or resume it on the way.
   */
  h2(socket: Socket): void;
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
 * Both servers take the socket itself and read it natively from then on, past what is pushed back here: the
 * HTTP/1 server's parser through the 'data' events that `resume` starts; node:http2 (Node 20,
 * lib/internal/http2/core.js, the Http2Session constructor, nodejs/node#35475) by `socket.read()` into
 * nghttp2 on the next tick. So an HTTP/2 socket stays paused: `unshift` has already queued a 'readable'
 * tick ahead of the session's, and on a flowing socket that tick's `flow()` would drain the preface into
 * 'data' events nobody listens to (nghttp2 then sees the next frame first: "bad client magic", GOAWAY
 * INTERNAL_ERROR). The socket itself, not a JavaScript Duplex around it: Node would wrap that in a
 * JSStreamSocket and every frame would cross into JavaScript (bench/h2 measured the cost: bench/RESULTS.md).
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
    if (h2) routes.h2(socket);
    else {
      routes.http1(socket);
      socket.resume();
    }
  };
  const onTimeout = (): void => {
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('error', onTimeout);
  socket.setTimeout(timeoutMs, onTimeout);
}
