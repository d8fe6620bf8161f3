// Holdfast as a TLS front for bench/h2, and the certificate every front shares (scripts/make-cert.sh). nginx
// and HAProxy are lib/peers.mjs's, given `tls`. Each runs in the foreground from a folder under bench/.run/,
// pinned with taskset, stopped by its own PID (lib/processes.mjs).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHoldfast } from '../lib/peers.mjs';

const repoDir = fileURLToPath(new URL('../..', import.meta.url));

/**
 * One self-signed P-256 certificate for 127.0.0.1 and localhost, made by the repository's script, shared by
 * every front. HAProxy wants the certificate and key in one file (`combined`).
 */
export function makeCertificate(dir) {
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', [join(repoDir, 'scripts', 'make-cert.sh'), dir, 'localhost', '127.0.0.1'], { stdio: 'ignore' });
  const cert = join(dir, 'localhost.crt');
  const key = join(dir, 'localhost.key');
  const combined = join(dir, 'localhost.pem');
  writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, combined };
}

/**
 * Holdfast (lib/peers.mjs: access log off, request cap lifted, as in the clear bench) with its TLS listener
 * beside the plain one (ALPN as the build offers it: `h2` and `http/1.1` with HTTP/2, `http/1.1` before), and
 * the connection limits raised for the fan-out (every client comes from 127.0.0.1).
 */
export function startHoldfastTls({ tlsPort, cert, extraArgs = [], ...rest }) {
  return startHoldfast({
    ...rest,
    extraArgs: [
      '--tls-listen', `127.0.0.1:${tlsPort}`,
      '--tls-cert', cert.cert,
      '--tls-key', cert.key,
      '--max-connections', '30000',
      '--max-connections-per-client', '30000',
      ...extraArgs,
    ],
  });
}
