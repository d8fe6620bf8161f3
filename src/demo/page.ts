import { FAVICON_DATA_URL } from '../control/favicon.js';

/**
 * The demo page: live events over SSE and long-poll, a publish box, and the keep-alive pooling numbers.
 * It claims only what Holdfast does: an event shows an id only when it carried one (an EventSource keeps
 * the previous id through an event without one), a reconnect replays only what history still holds after
 * the last id seen, and Holdfast's gap event is shown as messages missed.
 */
export function demoPage(options: { control: string; gapEvent: string }): string {
  const publishCommand = `holdfast publish demo "hello" --control ${options.control}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Holdfast demo</title>
<link rel="icon" href="${FAVICON_DATA_URL}">
<style>
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem;line-height:1.2}
code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px;overflow-wrap:anywhere}
pre{white-space:pre-wrap}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,18rem),1fr));gap:1rem}
.panel{border:1px solid #ddd;border-radius:8px;padding:.5rem 1rem;min-height:12rem;min-width:0}
.panel h3{margin:.4rem 0}
.panel ol{padding-left:1.2rem;margin:.3rem 0;font-family:ui-monospace,monospace;font-size:.9rem;overflow-wrap:anywhere}
.state{display:block;font-size:.8rem;font-weight:normal;color:#555}
li.gap{color:#9a3412}
form{margin:1rem 0;display:flex;gap:.5rem}input{flex:1;min-width:0;padding:.4rem}button{padding:.4rem 1rem}
</style></head>
<body>
<h1>Holdfast is in front of this page</h1>
<p>The backend behind Holdfast is stateless: it answers <code>/events</code> and <code>/poll</code> at once with
GRIP instructions, and Holdfast holds your browser's connections. Publish below, or from a shell with
<code>${escapeHtml(publishCommand)}</code>, and watch both transports receive it.</p>
<form id="pub"><input id="msg" placeholder="a message" autocomplete="off" aria-label="message"><button>Publish</button></form>
<p id="pubres"></p>
<div class="cols">
  <div class="panel"><h3>Server-Sent Events <small id="sse-state" class="state">connecting</small></h3><ol id="sse"></ol></div>
  <div class="panel"><h3>Long-poll <small class="state">a new request after each answer</small></h3><ol id="lp"></ol></div>
</div>
<h3>Keep-alive pooling</h3>
<pre id="stats">waiting...</pre>
<script>
function add(list, text, className) {
  const li = document.createElement('li'); li.textContent = text;
  if (className) li.className = className;
  const ol = document.getElementById(list); ol.prepend(li);
  while (ol.children.length > 12) ol.lastChild.remove();
}
const sseState = document.getElementById('sse-state');
const es = new EventSource('/events');
// The id of the last event that carried one: what the browser sends as Last-Event-ID when it reconnects.
let lastId = '';
function label(e) {
  if (e.lastEventId === lastId) return '(no id)';
  lastId = e.lastEventId;
  return '#' + lastId;
}
es.addEventListener('hello', (e) => add('sse', e.data));
es.onmessage = (e) => add('sse', label(e) + ' ' + e.data);
es.addEventListener(${JSON.stringify(options.gapEvent)}, (e) => {
  let detail = {};
  try { detail = JSON.parse(e.data); } catch {}
  add('sse', 'missed messages: history no longer reaches ' + (detail.lastEventId ? '#' + detail.lastEventId : 'the last id seen') +
    ', so some messages published while reconnecting were lost', 'gap');
});
es.onopen = () => { sseState.textContent = 'open'; };
es.onerror = () => {
  sseState.textContent = lastId === ''
    ? 'reconnecting: no id seen yet, so messages published meanwhile are missed'
    : 'reconnecting: messages after #' + lastId + ' that Holdfast still has in history will be replayed';
};
async function poll() {
  for (;;) {
    try {
      const r = await fetch('/poll', { cache: 'no-store' });
      const text = (await r.text()).trim();
      add('lp', text === '' ? '(timeout, polling again)' : text);
    } catch { await new Promise((r) => setTimeout(r, 1000)); }
  }
}
poll();
document.getElementById('pub').onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch('/api/publish', { method: 'POST', body: document.getElementById('msg').value });
  const out = await r.json().catch(() => ({}));
  document.getElementById('pubres').textContent = 'delivered to ' + (out.delivered ?? '?') + ' held connections';
  document.getElementById('msg').value = '';
};
async function tick() {
  const info = await (await fetch('/api/info')).json();
  document.getElementById('stats').textContent =
    'requests seen by the backend:    ' + info.requests + '\\n' +
    'backend connections ever opened: ' + info.backendConnectionsOpened + '\\n' +
    'X-Forwarded-For: ' + info.forwardedFor + '   Via: ' + info.via;
}
setInterval(() => { tick().catch(() => {}); }, 1000);
</script>
</body></html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
