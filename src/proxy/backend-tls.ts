import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { HoldfastConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';

/** How to reach an https:// backend: the CAs to trust (undefined: Node's bundled roots) and the SNI name. */
export type BackendTlsOptions = Pick<ConnectionOptions, 'ca' | 'servername'>;

/**
 * The CA bundle of `tls.backendCa`, read when the configuration is built (start and reload), so a missing
 * or non-PEM file is an error naming it rather than a 502 on the first request.
 */
export function readBackendCa(config: HoldfastConfig): string | undefined {
  const file = config.tls.backendCa;
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: 'tls.backendCa', value: file, expected: `a readable PEM file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }]);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError([{ path: 'tls.backendCa', value: file, expected: 'PEM CA certificates (-----BEGIN CERTIFICATE-----)' }]);
  }
  return pem;
}

/** TLS options for a backend origin; null for http://. SNI is the host name (never an IP, RFC 6066). */
export function backendTlsOptions(origin: URL, ca: string | undefined): BackendTlsOptions | null {
  if (origin.protocol !== 'https:') return null;
  const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
  return { ...(ca === undefined ? {} : { ca }), ...(isIP(host) === 0 ? { servername: host } : {}) };
}

/** node:http's or node:https's `request`, for the connections a backend gets outside its pool. */
export function backendRequestFunction(tls: BackendTlsOptions | null): typeof httpRequest {
  return tls === null ? httpRequest : httpsRequest;
}
