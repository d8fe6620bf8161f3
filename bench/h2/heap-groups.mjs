// Where the bytes of a held stream go (issue 13): two V8 heap snapshots of one server, idle and with N streams
// held, grouped by what each node is (an object's constructor, a closure's function name, arrays, strings,
// code, native backing stores), summed by self size; the difference divided by N is each group's bytes per
// stream. Self size, not retained size: every byte is counted once, and the groups add up to the heap's growth.
//   node h2/heap-groups.mjs IDLE.heapsnapshot HELD.heapsnapshot STREAMS [TOP]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** key -> { count, bytes } for one snapshot, and its total self size. */
export function groupSnapshot(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = meta.node_types[typeAt];
  const { nodes, strings } = snap;
  const groups = new Map();
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const size = nodes[i + sizeAt];
    total += size;
    const key = groupKey(type, strings[nodes[i + nameAt]]);
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { count: 1, bytes: size });
    else {
      g.count++;
      g.bytes += size;
    }
  }
  return { groups, total };
}

/** Objects by constructor, closures by function, natives by class; strings, code and V8's hidden nodes by type. */
function groupKey(type, name) {
  switch (type) {
    case 'object':
    case 'native':
      return `${type} ${name}`;
    case 'closure':
      return `closure ${name === '' ? '(anonymous)' : name}`;
    case 'hidden':
    case 'array':
    case 'object shape':
      return `${type} ${name.replace(/\d+/g, 'N')}`;
    default:
      return type;
  }
}

/** Per-stream rows, largest first: { key, countPerStream, bytesPerStream }, and the totals. */
export function compareSnapshots(idleFile, heldFile, streams) {
  const idle = groupSnapshot(idleFile);
  const held = groupSnapshot(heldFile);
  const rows = [];
  for (const [key, h] of held.groups) {
    const i = idle.groups.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, countPerStream: (h.count - i.count) / streams, bytesPerStream: (h.bytes - i.bytes) / streams });
  }
  rows.sort((a, b) => b.bytesPerStream - a.bytesPerStream);
  // Compiled code grows with whatever got hot between the snapshots, not with the streams: a few hundred bytes
  // "per stream" that move from run to run. Shown as its own row, left out of the per-stream figure.
  const codePerStream = rows.filter((r) => r.key === 'code').reduce((a, r) => a + r.bytesPerStream, 0);
  const heapPerStream = (held.total - idle.total) / streams;
  return { rows, heapPerStream, codePerStream, withoutCodePerStream: heapPerStream - codePerStream, idleBytes: idle.total, heldBytes: held.total };
}

export function breakdownTable({ rows, heapPerStream, codePerStream, withoutCodePerStream }, top = 25) {
  const lines = ['| what (V8 heap node) | count per stream | self bytes per stream |', '|---|---:|---:|'];
  let shown = 0;
  for (const r of rows.filter((x) => x.key !== 'code').slice(0, top)) {
    lines.push(`| ${r.key.replaceAll('|', '\\|')} | ${r.countPerStream.toFixed(2)} | ${r.bytesPerStream.toFixed(0)} |`);
    shown += r.bytesPerStream;
  }
  lines.push(`| everything else | | ${(withoutCodePerStream - shown).toFixed(0)} |`);
  lines.push(`| **heap snapshot, without compiled code** (V8 heap, and the native sizes Node reports, e.g. nghttp2's) | | **${withoutCodePerStream.toFixed(0)}** |`);
  lines.push(`| compiled code (JIT between the snapshots, not per stream) | | ${codePerStream.toFixed(0)} |`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [idleFile, heldFile, streams, top] = process.argv.slice(2);
  console.log(breakdownTable(compareSnapshots(idleFile, heldFile, Number(streams)), Number(top ?? 25)));
}
