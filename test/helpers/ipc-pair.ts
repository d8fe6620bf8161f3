import type { IpcPort } from '../../src/bus/cluster-messages.js';

/**
 * Two ends of an in-process IPC channel with node:cluster's semantics: messages are JSON-serialised (a
 * Buffer would arrive as numbers, as over the real channel), delivered asynchronously and in order;
 * `disconnect` closes both ends and tells their listeners.
 */
export function ipcPair(): { a: IpcPort; b: IpcPort; disconnect(): void } {
  let connected = true;
  const listeners = { a: new Set<(m: unknown) => void>(), b: new Set<(m: unknown) => void>() };
  const onClose: (() => void)[] = [];
  const end = (self: 'a' | 'b', peer: 'a' | 'b'): IpcPort => ({
    send(message) {
      if (!connected) return false;
      const copy: unknown = JSON.parse(JSON.stringify(message));
      setImmediate(() => {
        if (connected) for (const l of listeners[peer]) l(copy);
      });
      return true;
    },
    onMessage: (l) => void listeners[self].add(l),
    offMessage: (l) => void listeners[self].delete(l),
    onDisconnect: (l) => void onClose.push(l),
    get connected() {
      return connected;
    },
  });
  return {
    a: end('a', 'b'),
    b: end('b', 'a'),
    disconnect() {
      if (!connected) return;
      connected = false;
      for (const l of onClose) l();
    },
  };
}
