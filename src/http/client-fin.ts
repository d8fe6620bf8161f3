import type { Socket } from 'node:net';

/**
 * A held client (long-poll or stream) that closes its sending side is gone, not half-closed: nothing it could
 * still read is owed before the hold ends, and keeping it would fan messages out to nobody until a timeout.
 * Plain requests, by contrast, are answered after a client's FIN (Edge sets httpAllowHalfOpen).
 */
export function dropHeldClientOnFin(socket: Socket | null): void {
  if (socket === null || socket.destroyed) return;
  // The FIN may have come while the backend was still deciding to hold.
  if (socket.readableEnded) {
    socket.destroy();
    return;
  }
  socket.on('end', destroyOnEnd); // `on`: end comes once, and once() costs a wrapper per held client
}

function destroyOnEnd(this: Socket): void {
  this.destroy();
}
