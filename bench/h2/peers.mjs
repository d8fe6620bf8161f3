// The TLS fronts of the HTTP/2 bench: nginx (`listen ... ssl http2`), HAProxy (`bind ... ssl crt ... alpn
// h2,http/1.1`) and Holdfast (`--tls-listen`), each with the same certificate (scripts/make-cert.sh) and in front
// of the same HTTP/1.1 backend (lib/peers.mjs: nginx serving static files) with keep-alive upstream, as
// bench/http-proxy-bench.mjs runs them in the clear. Each runs in the foreground from a folder under
// bench/.run/h2/, pinned with taskset, stopped by its own PID (lib/processes.mjs).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { holdfastEnv, holdfastNodeArgs } from '../lib/holdfast-node-args.mjs';
import { startProcess } from '../lib/processes.mjs';

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

function nginxTemp(dir) {
  const subs = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
  for (const sub of subs) mkdirSync(join(dir, sub), { recursive: true });
  return subs.map((sub) => `  ${sub}_temp_path ${join(dir, sub)};`).join('\n');
}

/**
 * nginx 1.22 terminating TLS with HTTP/2 and HTTP/1.1 (ALPN), proxying over kept-alive HTTP/1.1 (the upstream
 * block PEERS.md asks for). Request caps lifted as in the clear bench (`keepalive_requests` also bounds HTTP/2
 * connections since 1.19.7). Session tickets and cache left at their defaults (h2load does not resume).
 */
export function startNginxTls({ dir, port, backendPort, cpu, cert }) {
  mkdirSync(dir, { recursive: true });
  const conf = `daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 16000; }
http {
${nginxTemp(dir)}
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} ssl http2 backlog=4096;
    ssl_certificate ${cert.cert};
    ssl_certificate_key ${cert.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  return startProcess({ name: 'nginx', command: 'nginx', args: ['-e', 'stderr', '-p', dir, '-c', confFile], cpu, logFile: join(dir, 'out.log') });
}

/**
 * HAProxy 2.6, one thread, TLS with ALPN h2 and http/1.1, `http-reuse always` (idle backend connections shared
 * across clients, as Holdfast's pool and nginx's upstream keepalive do).
 */
export function startHaproxyTls({ dir, port, backendPort, cpu, cert }) {
  mkdirSync(dir, { recursive: true });
  const conf = `global
  nbthread 1
  maxconn 9000
  ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend fe
  bind 127.0.0.1:${port} ssl crt ${cert.combined} alpn h2,http/1.1
  default_backend be

backend be
  http-reuse always
  server s1 127.0.0.1:${backendPort}
`;
  const confFile = join(dir, 'haproxy.cfg');
  writeFileSync(confFile, conf);
  return startProcess({ name: 'haproxy', command: 'haproxy', args: ['-db', '-f', confFile], cpu, logFile: join(dir, 'out.log') });
}

/**
 * Holdfast from `mainJs` with its TLS listener (`--tls-listen`, ALPN as the build offers it: `http/1.1` before
 * HTTP/2, `h2` and `http/1.1` with it) beside the plain one, which the bench does not use. The access log is
 * off (`--log-level warn`) and the per-connection request cap lifted, as in the clear bench; the connection
 * limits are raised for the handshake and fan-out runs (every client comes from 127.0.0.1).
 */
export function startHoldfastTls({ dir, port, tlsPort, controlPort, backendPort, cpu, mainJs, cert, nodeArgs = [], extraArgs = [] }) {
  mkdirSync(dir, { recursive: true });
  return startProcess({
    name: 'holdfast',
    command: process.execPath,
    args: [
      ...holdfastNodeArgs(mainJs),
      ...nodeArgs,
      mainJs,
      '--listen', `127.0.0.1:${port}`,
      '--tls-listen', `127.0.0.1:${tlsPort}`,
      '--tls-cert', cert.cert,
      '--tls-key', cert.key,
      '--control', `127.0.0.1:${controlPort}`,
      '--backend', `http://127.0.0.1:${backendPort}`,
      '--log-level', 'warn',
      '--max-requests-per-connection', '0',
      '--max-connections', '30000',
      '--max-connections-per-client', '30000',
      '--drain-timeout', '2000',
      ...extraArgs,
    ],
    cpu,
    logFile: join(dir, 'out.log'),
    cwd: dir,
    env: holdfastEnv(mainJs),
  });
}
