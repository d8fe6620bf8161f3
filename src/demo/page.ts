/** The demo page: live events over SSE and long-poll, a publish box, and the keep-alive pooling numbers. */
export function demoPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Holdfast demo</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.panel{border:1px solid #ddd;border-radius:8px;padding:.5rem 1rem;min-height:12rem}
.panel ol{padding-left:1.2rem;margin:.3rem 0;font-family:ui-monospace,monospace;font-size:.9rem}
form{margin:1rem 0;display:flex;gap:.5rem}input{flex:1;padding:.4rem}button{padding:.4rem 1rem}
</style></head>
<body>
<h1>Holdfast is in front of this page</h1>
<p>The backend behind Holdfast is stateless: it answers <code>/events</code> and <code>/poll</code> at once with
GRIP instructions, and Holdfast holds your browser's connections. Publish below (or run
<code>holdfast publish demo "hello"</code>) and watch both transports receive it.</p>
<form id="pub"><input id="msg" placeholder="a message" autocomplete="off"><button>Publish</button></form>
<p id="pubres"></p>
<div class="cols">
  <div class="panel"><h3>Server-Sent Events <small id="sse-state"></small></h3><ol id="sse"></ol></div>
  <div class="panel"><h3>Long-poll</h3><ol id="lp"></ol></div>
</div>
<h3>Keep-alive pooling</h3>
<pre id="stats">waiting...</pre>
<script>
function add(list, text) {
  const li = document.createElement('li'); li.textContent = text;
  const ol = document.getElementById(list); ol.prepend(li);
  while (ol.children.length > 12) ol.lastChild.remove();
}
const es = new EventSource('/events');
es.addEventListener('hello', (e) => add('sse', e.data));
es.onmessage = (e) => add('sse', '#' + e.lastEventId + ' ' + e.data);
es.onopen = () => { document.getElementById('sse-state').textContent = '(open)'; };
es.onerror = () => { document.getElementById('sse-state').textContent = '(reconnecting: missed events are replayed)'; };
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
