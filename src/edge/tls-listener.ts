import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { RateLimitedLog } from '../observe/rate-limited-log.js';
import { pickCertificate, type LoadedCertificate } from './tls-certificates.js';
import { listenOn } from './listen-on.js';

export interface TlsListenerDeps {
  certificates: LoadedCertificate[];
  /** Where a connection goes once its handshake is done: the edge, as if it had been accepted in the clear. */
  adopt: (socket: TLSSocket) => void;
  /** A client that has not finished its handshake by then is dropped (slowloris before the request head). */
  handshakeTimeoutMs: number;
  log: Logger;
  metrics: Metrics;
}

/**
 * The TLS client listener: terminates TLS (1.2 and 1.3, Node's secure defaults), picks the certificate by
 * SNI, offers ALPN `h2` and `http/1.1`, and hands each connection to the same edge as the plain listener
 * (which serves it over HTTP/2 or HTTP/1.1 by what ALPN chose), so limits, holds and WebSockets behave the
 * same over TLS. Certificates are swapped by
 * `reload` for new handshakes; connections already open keep theirs.
 */
export class TlsListener {
  readonly server: Server;
  #certificates: LoadedCertificate[];
  readonly #handshakeFailures: RateLimitedLog;

  constructor(deps: TlsListenerDeps) {
    this.#certificates = deps.certificates;
    const first = deps.certificates[0]!;
    this.#handshakeFailures = new RateLimitedLog(deps.log, 'info', 'TLS handshakes failed');
    this.server = createServer({
      cert: first.certPem,
      key: first.keyPem,
      minVersion: 'TLSv1.2',
      // RFC 9113 §3.2: `h2` first, the server's preference; a client without ALPN gets HTTP/1.1.
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: deps.handshakeTimeoutMs,
      SNICallback: (servername, callback) => callback(null, pickCertificate(this.#certificates, servername).context),
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      deps.metrics.tlsHandshakesTotal.inc({ outcome: 'ok' });
      deps.adopt(socket);
    });
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      deps.metrics.tlsHandshakesTotal.inc({ outcome: 'failed' });
      this.#handshakeFailures.note(err.code ?? 'ERR_TLS', { code: err.code, reason: err.message });
      socket.destroy();
    });
  }

  /** New certificates for new handshakes (SIGHUP, POST /reload); open connections are not touched. */
  reload(certificates: LoadedCertificate[]): void {
    this.#certificates = certificates;
    const first = certificates[0]!;
    this.server.setSecureContext({ cert: first.certPem, key: first.keyPem, minVersion: 'TLSv1.2' });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.server, 'TLS clients', host, port);
  }

  /** Stops accepting; resolves once every connection it accepted has closed (the edge drains them). */
  close(): Promise<void> {
    this.#handshakeFailures.flush();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
