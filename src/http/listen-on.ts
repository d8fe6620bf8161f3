import type { Server } from 'node:net';
import { ListenError } from '../errors.js';

/**
 * Binds a listener and resolves to the address it got (port 0 resolved); a bind failure is a ListenError
 * naming `what` (clients, TLS clients, control) and the address, the one line the CLI prints.
 */
export async function listenOn(server: Server, what: string, host: string, port: number): Promise<{ host: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(what, `${host}:${port}`, err));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? { host: address.address, port: address.port } : { host, port };
}
