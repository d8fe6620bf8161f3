import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { freePort } from '../helpers/listen.js';
import { eventually } from '../helpers/until.js';
import { CONNECTION_CHECKS_OK, checkOf, probe, verdicts } from './probe-helpers.js';

// Debian's nginx-light (scripts/services.sh installs it when missing); nchan from libnginx-mod-nchan.
const NGINX = '/usr/sbin/nginx';
const NCHAN = '/usr/lib/nginx/modules/ngx_nchan_module.so';

/** nginx in the foreground on a free loopback port, with its prefix, temp paths and pid file in a temp dir. */
async function startNginx(t: TestContext, server: string, options: { nchan?: boolean } = {}): Promise<string> {
  const prefix = mkdtempSync(join(tmpdir(), 'holdfast-probe-nginx-'));
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `${options.nchan === true ? `load_module ${NCHAN};\n` : ''}daemon off;
master_process off;
pid ${prefix}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
${server}
  }
}
`,
  );
  let stderr = '';
  const child = spawn(NGINX, ['-p', prefix, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  t.after(() => {
    child.kill('SIGKILL');
    rmSync(prefix, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${stderr}`);
      return fetch(`${url}/`).then(
        () => true,
        () => false,
      );
    },
    20_000,
    'nginx to answer',
  );
  return url;
}

test('probe: nginx keeps connections alive, counts keepalive_requests, closes idle ones at keepalive_timeout, pipelines in order', async (t) => {
  if (!existsSync(NGINX)) return t.skip(`${NGINX} is not installed (apt-get install nginx-light; scripts/services.sh does it)`);
  const url = await startNginx(t, `
    keepalive_requests 5;
    keepalive_timeout 2s;
    location / { return 200 "hello $request_uri\\n"; }`);
  const report = await probe(`${url}/`, { idleMaxMs: 20_000 });
  assert.deepEqual(verdicts(report), CONNECTION_CHECKS_OK);
  assert.match(report.server ?? '', /^nginx/);
  assert.deepEqual(checkOf(report, 'keepalive.requests').measured, { served: 5, atLeast: false, lastSaidClose: true });
  assert.equal(checkOf(report, 'keepalive.idle').measured.atLeast, false);
  assert.deepEqual(checkOf(report, 'pipelining').measured, { answers: 3, answeredRequests: [1, 2, 3], orderVerified: true });
});

test('probe: an nchan SSE subscriber streams ids and ping comments and replays after Last-Event-ID', async (t) => {
  if (!existsSync(NGINX) || !existsSync(NCHAN)) return t.skip(`nginx with nchan is not installed (apt-get install nginx-light libnginx-mod-nchan)`);
  const url = await startNginx(
    t,
    `
    location ~ ^/sub/(\\w+)$ {
      nchan_subscriber eventsource;
      nchan_channel_id $1;
      nchan_subscriber_first_message oldest;
      nchan_eventsource_ping_interval 1;
      nchan_eventsource_ping_comment "ping";
    }
    location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1; }`,
    { nchan: true },
  );
  // nchan keeps the messages: a subscriber that comes later gets them from the oldest, with ids.
  for (const message of ['one', 'two']) {
    const published = await fetch(`${url}/pub/news`, { method: 'POST', body: message });
    assert.ok([201, 202].includes(published.status), `nchan publish answered ${published.status}`);
  }
  // nchan answers an SSE subscriber only when it asks for text/event-stream (a plain GET gets 403): --sse asks so.
  const report = await probe(`${url}/sub/news`, { sse: true, sseWaitMs: 20_000 });
  assert.deepEqual(verdicts(report), { answer: 'ok', 'sse.stream': 'ok', 'sse.ids': 'ok', 'sse.heartbeat': 'ok', 'sse.resume': 'ok' });
  assert.equal(checkOf(report, 'sse.ids').measured.withId, 2);
  assert.equal(checkOf(report, 'sse.resume').measured.replayed, 1);
});
