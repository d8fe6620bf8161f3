import { FAVICON_DATA_URL } from './favicon.js';

/**
 * `GET /dashboard`: one HTML page, inline CSS and JS, no framework. It opens `/dashboard/events` (same
 * origin, so a browser that signed in with the publish key sends it again) and redraws from each snapshot.
 * Every number has a `data-k` attribute naming its place in the snapshot, which the browser test reads.
 */
export function dashboardPage(): string {
  return PAGE;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Holdfast dashboard</title>
<link rel="icon" href="${FAVICON_DATA_URL}">
<style>
*{box-sizing:border-box}
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:1rem;color:#1d2329;background:#f5f6f8}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.3rem 1rem;margin-bottom:1rem}
h1{font-size:1.3rem;margin:0}h2{font-size:.95rem;margin:0 0 .5rem;color:#4a5561;text-transform:uppercase;letter-spacing:.03em}
#state{font-size:.85rem;padding:.1rem .5rem;border-radius:1rem;background:#ddd}
#state.live{background:#cdebd5;color:#14532d}#state.down{background:#f8d4d4;color:#7f1d1d}
#scope,#updated{font-size:.85rem;color:#5b6570}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,17rem),1fr));gap:.8rem}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:.7rem .9rem;min-width:0}
dl{display:grid;grid-template-columns:1fr auto;gap:.15rem 1rem;margin:0}dt{color:#4a5561}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
table{width:100%;border-collapse:collapse;font-size:.9rem}th{text-align:left;font-weight:500;color:#5b6570}
td,th{padding:.2rem .3rem;border-top:1px solid #eef0f2;vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.name{overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:.85rem}
.up{color:#15803d;font-weight:600}.down{color:#b91c1c;font-weight:600}.none{color:#7b858f;font-style:italic}
.note{font-size:.85rem;color:#5b6570;margin:.4rem 0 0}
</style></head>
<body>
<header><h1>Holdfast</h1><span id="state">connecting</span><span id="scope"></span><span id="updated"></span></header>
<p id="unavailable" class="note" hidden></p>
<div class="grid">
<section><h2>Connections</h2><dl>
<dt>client connections</dt><dd data-k="connections.client">-</dd>
<dt>limit</dt><dd data-k="connections.clientMax">-</dd>
<dt>backend connections (pooled)</dt><dd data-k="connections.backend">-</dd>
<dt>WebSocket tunnels</dt><dd data-k="connections.wsTunnels">-</dd>
</dl></section>
<section><h2>Held clients</h2><dl>
<dt>Server-Sent Events</dt><dd data-k="held.sse">-</dd>
<dt>long-poll</dt><dd data-k="held.longPoll">-</dd>
<dt>HTTP stream</dt><dd data-k="held.stream">-</dd>
<dt>WebSocket</dt><dd data-k="held.websocket">-</dd>
</dl></section>
<section><h2>Traffic</h2><dl>
<dt>requests / s</dt><dd data-k="rates.requestsPerSecond">-</dd>
<dt>published / s</dt><dd data-k="rates.publishedPerSecond">-</dd>
<dt>delivered / s</dt><dd data-k="rates.deliveredPerSecond">-</dd>
<dt>requests (total)</dt><dd data-k="rates.requestsTotal">-</dd>
<dt>published (total)</dt><dd data-k="rates.publishedTotal">-</dd>
<dt>delivered (total)</dt><dd data-k="rates.deliveredTotal">-</dd>
</dl><p class="note">rates over the last <span data-k="rates.windowSeconds">-</span> s</p></section>
<section><h2>Channels</h2><dl>
<dt>channels</dt><dd data-k="channels.total">-</dd>
<dt>subscriptions</dt><dd data-k="channels.subscriptions">-</dd>
</dl>
<table><thead><tr><th>channel</th><th class="n">subscribers</th></tr></thead><tbody id="channels"></tbody></table>
<p id="channels-hidden" class="note" hidden>Channel names need the publish key: <a href="/dashboard/sign-in">sign in</a> (any user name, the key as password).</p>
</section>
<section><h2>Backends</h2>
<table><thead><tr><th>server</th><th>health</th><th class="n">in flight</th><th class="n">conns</th></tr></thead><tbody id="backends"></tbody></table>
<table><thead><tr><th>group</th><th class="n">queued</th></tr></thead><tbody id="groups"></tbody></table>
</section>
<section><h2>Bus</h2><dl>
<dt>driver</dt><dd data-k="bus.driver">-</dd>
<dt>state</dt><dd data-k="bus.state">-</dd>
</dl></section>
<section><h2>Drops by reason</h2><table><tbody id="drops"></tbody></table></section>
<section><h2>Refusals by code</h2><table><tbody id="refusals"></tbody></table></section>
</div>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
const fmt = (v) => typeof v !== 'number' ? String(v) : Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(1);
function cell(tr, text, cls) { const td = tr.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }
function rows(tbody, list, fill, empty) {
  tbody.replaceChildren();
  if (list.length === 0) { const td = tbody.insertRow().insertCell(); td.colSpan = 4; td.className = 'none'; td.textContent = empty; return; }
  for (const item of list) fill(tbody.insertRow(), item);
}
function counts(tbody, record, attr) {
  rows(tbody, Object.entries(record).sort((a, b) => b[1] - a[1]), (tr, [k, v]) => {
    tr.dataset[attr] = k; cell(tr, k, 'name'); cell(tr, fmt(v), 'n');
  }, 'none');
}
function draw(s) {
  const values = { connections: s.connections, held: s.connections.held, rates: s.rates, channels: s.channels, bus: s.bus };
  for (const el of document.querySelectorAll('[data-k]')) {
    const [group, key] = el.dataset.k.split('.');
    el.textContent = fmt(values[group][key]);
  }
  $('scope').textContent = s.scope;
  $('updated').textContent = 'updated ' + new Date(s.atMs).toLocaleTimeString();
  $('channels-hidden').hidden = s.channels.top !== null;
  rows($('channels'), s.channels.top ?? [], (tr, c) => {
    tr.dataset.channel = c.name; cell(tr, c.name, 'name'); cell(tr, fmt(c.subscribers), 'n');
  }, s.channels.top === null ? 'names hidden' : 'no channels held');
  rows($('backends'), s.backends, (tr, b) => {
    tr.dataset.server = b.server; cell(tr, b.server + (b.group === 'default' ? '' : ' (' + b.group + ')'), 'name');
    cell(tr, b.up ? 'up' : 'down', b.up ? 'up' : 'down'); cell(tr, fmt(b.inFlight), 'n'); cell(tr, fmt(b.connections), 'n');
  }, 'no backends');
  rows($('groups'), s.groups, (tr, g) => { tr.dataset.group = g.name; cell(tr, g.name, 'name'); cell(tr, fmt(g.queue), 'n'); }, 'no groups');
  counts($('drops'), s.drops, 'reason');
  counts($('refusals'), s.refusals, 'code');
}
const state = $('state');
const es = new EventSource('/dashboard/events');
es.addEventListener('snapshot', (e) => {
  draw(JSON.parse(e.data)); $('unavailable').hidden = true;
  state.textContent = 'live'; state.className = 'live';
});
es.addEventListener('unavailable', (e) => {
  $('unavailable').hidden = false; $('unavailable').textContent = 'numbers unavailable: ' + JSON.parse(e.data).reason;
});
es.onerror = () => { state.textContent = 'reconnecting'; state.className = 'down'; };
</script>
</body></html>
`;
