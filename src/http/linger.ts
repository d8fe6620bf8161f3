import type { Socket } from 'node:net';

/**
 * nginx's lingering_close for a connection we close while the client may still be sending (a body nobody
 * will read). Node ends the socket after a closing response and destroys it the moment its FIN is flushed;
 * with unread bytes that close sends a RST, and a client still writing then fails on the reset and never
 * reads the answer waiting for it (an early 413 became an empty, reset connection). Lingering instead: FIN
 * after the response, then the socket stays open, no longer read, for `lingerMs`. The client reads its answer
 * and the FIN; its unread bytes just fill the window meanwhile.
 */
const kLingerMs = Symbol('holdfast.lingerMs');
const kKeepReading = Symbol('holdfast.lingerKeepReading');

type LingeringSocket = Socket & { [kLingerMs]?: number; [kKeepReading]?: boolean };

/**
 * Makes Node's end-of-response close of `socket` (destroySoon) a lingering one. With `keepReading`, what
 * the client still sends is read (and discarded by Node's dumped request) while it lingers: a client that
 * reads only after its upload is written (curl) then finishes writing and finds the answer. Without it the
 * socket is not read: for connections whose input must not reach Node's parser again.
 */
export function lingerOnClose(socket: Socket, lingerMs: number, keepReading = false): void {
  (socket as LingeringSocket)[kLingerMs] = lingerMs;
  (socket as LingeringSocket)[kKeepReading] = keepReading;
  socket.destroySoon = lingerThenDestroy;
}

/** Ends `socket` now (after what is queued, then `last`) and destroys it after `lingerMs`. */
export function endWithLinger(socket: Socket, lingerMs: number, last?: Buffer | string): void {
  if (socket.writable) {
    if (last === undefined) socket.end();
    else socket.end(last);
  }
  if (lingerMs > 0) socket.setTimeout(lingerMs, socketDestroyOnTimeout);
  else socket.destroy();
}

function socketDestroyOnTimeout(this: Socket): void {
  this.destroy();
}

/** In place of Node's socket.destroySoon(), which closes as soon as the FIN is out. */
function lingerThenDestroy(this: LingeringSocket): void {
  if (this[kKeepReading] !== true) this.pause();
  endWithLinger(this, this[kLingerMs] ?? 0);
}
