// Self size per constructor in a V8 .heapsnapshot (from `--heapsnapshot-signal`), largest first, with
// counts: what a held connection is made of. node bench/fanout/heap-summary.mjs FILE [--per N] [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string' }, top: { type: 'string', default: '30' } } });
const snap = JSON.parse(readFileSync(positionals[0], 'utf8'));
const meta = snap.snapshot.meta;
const F = meta.node_fields.length;
const iType = meta.node_fields.indexOf('type');
const iName = meta.node_fields.indexOf('name');
const iSize = meta.node_fields.indexOf('self_size');
const types = meta.node_types[iType];
const agg = new Map();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += F) {
  const type = types[snap.nodes[i + iType]];
  const size = snap.nodes[i + iSize];
  const name = type === 'object' || type === 'closure' || type === 'native' ? `${type}:${snap.strings[snap.nodes[i + iName]]}` : `(${type})`;
  const a = agg.get(name) ?? { count: 0, size: 0 };
  a.count++;
  a.size += size;
  total += size;
  agg.set(name, a);
}
const per = values.per ? Number(values.per) : null;
console.log(`total self size ${(total / 1048576).toFixed(1)} MiB${per ? `, ${(total / per / 1000).toFixed(2)} KB per connection (N=${per})` : ''}`);
console.log('   bytes     count  per-conn-B  name');
for (const [k, v] of [...agg].sort((a, b) => b[1].size - a[1].size).slice(0, Number(values.top))) {
  console.log(`${String(v.size).padStart(10)} ${String(v.count).padStart(8)} ${per ? (v.size / per).toFixed(0).padStart(10) : ''}  ${k.slice(0, 90)}`);
}
