import net from 'node:net';

/**
 * A loopback port free right now. The kernel picks it (port 0), so runs never collide with fixed ports; the
 * short window before the peer binds it is harmless on a bench machine.
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
