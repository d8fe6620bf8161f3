import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfastEnv, holdfastNodeArgs } from './holdfast-node-args.mjs';
import { startProcess } from './processes.mjs';

/** The two response bodies: 13 bytes (the classic "hello world" cell) and 10 KiB (copy cost starts to show). */
export const BODIES = {
  small: { path: '/small', bytes: 13, text: 'Hello, World!' },
  '10k': { path: '/10k', bytes: 10_240, text: 'x'.repeat(10_239) + '\n' },
};

/** nginx wants these writable even when nothing is buffered to disk; keep them out of /var/lib/nginx. */
function nginxCommon(dir) {
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { recursive: true });
  return `
daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
`;
}

function nginxTempPaths(dir) {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((sub) => `  ${sub}_temp_path ${join(dir, sub)};`)
    .join('\n');
}

/**
 * The backend: nginx serving two static files from its open-file cache (a 10 KiB body is too long for a
 * `return` string in nginx's config), no access log, keep-alive effectively unlimited so neither wrk nor a
 * proxy is ever made to reconnect by the backend. Its stub_status (on a second port) counts the TCP
 * connections it accepted: that is how we see how many backend connections each proxy opened.
 */
export function startBackend({ dir, port, statusPort, cpu }) {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  for (const b of Object.values(BODIES)) writeFileSync(join(www, b.path.slice(1)), b.text);
  const conf = `${nginxCommon(dir)}
http {
${nginxTempPaths(dir)}
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  sendfile on;
  tcp_nopush on;
  open_file_cache max=16 inactive=10m;
  open_file_cache_valid 10m;
  default_type text/plain;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${www};
  }
  server {
    listen 127.0.0.1:${statusPort};
    location = /status { stub_status; }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  return startProcess({
    name: 'backend (nginx)',
    command: 'nginx',
    args: ['-e', 'stderr', '-p', dir, '-c', confFile],
    cpu,
    logFile: join(dir, 'out.log'),
  });
}

/**
 * nginx as the reverse proxy, with the upstream keep-alive that nginx 1.22 needs spelled out. With `tls`
 * (`{ cert, key }`, bench/h2) it terminates TLS and speaks HTTP/2 and HTTP/1.1 (ALPN) to clients;
 * `keepalive_requests` then also bounds HTTP/2 connections (since 1.19.7).
 */
export function startNginxProxy({ dir, port, backendPort, cpu, tls = null }) {
  mkdirSync(dir, { recursive: true });
  const listen = tls === null
    ? `listen 127.0.0.1:${port} backlog=4096;`
    : `listen 127.0.0.1:${port} ssl http2 backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_protocols TLSv1.2 TLSv1.3;`;
  const conf = `${nginxCommon(dir)}
http {
${nginxTempPaths(dir)}
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    ${listen}
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
  return startProcess({
    name: 'nginx',
    command: 'nginx',
    args: ['-e', 'stderr', '-p', dir, '-c', confFile],
    cpu,
    logFile: join(dir, 'out.log'),
  });
}

/**
 * HAProxy with one thread. `http-reuse always` shares idle backend connections across client connections,
 * the same pooling Holdfast and nginx's upstream keepalive do (`safe`, the default, opens one per new client
 * connection for its first request). With `tls` (`{ combined }`: certificate and key in one PEM file, bench/h2)
 * it terminates TLS with ALPN h2 and http/1.1.
 */
export function startHaproxy({ dir, port, backendPort, cpu, tls = null }) {
  mkdirSync(dir, { recursive: true });
  const conf = `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend fe
  bind 127.0.0.1:${port}${tls === null ? '' : ` ssl crt ${tls.combined} alpn h2,http/1.1`}
  default_backend be

backend be
  http-reuse always
  server s1 127.0.0.1:${backendPort}
`;
  const confFile = join(dir, 'haproxy.cfg');
  writeFileSync(confFile, conf);
  return startProcess({
    name: 'haproxy',
    command: 'haproxy',
    args: ['-db', '-f', confFile],
    cpu,
    logFile: join(dir, 'out.log'),
  });
}

/** http-proxy (npm) with a keep-alive agent, see peers/http-proxy-server.mjs. */
export function startHttpProxy({ dir, port, backendPort, cpu, benchDir }) {
  mkdirSync(dir, { recursive: true });
  return startProcess({
    name: 'http-proxy',
    command: process.execPath,
    args: [join(benchDir, 'peers', 'http-proxy-server.mjs'), String(port), `http://127.0.0.1:${backendPort}`],
    cpu,
    logFile: join(dir, 'out.log'),
  });
}

/**
 * Holdfast from the parent's dist/. The access log is off via `--log-level warn` (it is an info line per
 * request). The per-connection request cap is lifted to match the peers, which are configured without one
 * (nginx keepalive_requests raised, HAProxy and Node have none); at the default of 1000 wrk would reconnect
 * every 1000 requests, a small but real difference between the rows.
 */
export function startHoldfast({ dir, port, controlPort, backendPort, cpu, mainJs, nodeArgs = [], extraArgs = [], env = {}, name = 'holdfast' }) {
  mkdirSync(dir, { recursive: true });
  return startProcess({
    name,
    command: process.execPath,
    args: [
      ...holdfastNodeArgs(mainJs),
      ...nodeArgs,
      mainJs,
      '--listen', `127.0.0.1:${port}`,
      '--control', `127.0.0.1:${controlPort}`,
      '--backend', `http://127.0.0.1:${backendPort}`,
      '--log-level', 'warn',
      '--max-requests-per-connection', '0',
      '--drain-timeout', '2000',
      ...extraArgs,
    ],
    cpu,
    logFile: join(dir, 'out.log'),
    cwd: dir,
    env: { ...holdfastEnv(mainJs), ...env },
  });
}
