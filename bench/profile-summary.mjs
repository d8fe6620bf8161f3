#!/usr/bin/env node
// Self time per function in a V8 .cpuprofile (from `node --cpu-prof`), grouped by function name + script URL,
// largest first. Self time comes from the sample timeline (samples + timeDeltas), which is exact for uneven
// sampling intervals where hitCount x interval is not.
//
//   node profile-summary.mjs [file.cpuprofile | dir] [top=25]
// With a directory (default .run/prof), the newest .cpuprofile in it.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Readable location: repo-relative for our code, `pkg/...` for dependencies, `node:` for Node internals. */
function shortUrl(url) {
  if (url === '') return '';
  let path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm !== -1) return path.slice(nm + 'node_modules/'.length);
  if (path.startsWith(repoRoot)) path = path.slice(repoRoot.length);
  return path;
}

export function summarizeProfile(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  // timeDeltas[i] is the time before sample i; it belongs to the sample it leads to, as Chrome DevTools counts.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const groups = new Map();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const name = functionName || '(anonymous)';
    const key = `${name}\u0000${url}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { name, where: url ? `${shortUrl(url)}:${lineNumber + 1}` : '', us: 0 };
      groups.set(key, group);
    }
    group.us += us;
    totalUs += us;
  }
  const idleUs = [...groups.values()].filter((g) => g.name === '(idle)').reduce((a, g) => a + g.us, 0);
  // Percentages of busy time: idle depends on how long the run waited, not on what the process did.
  const busyUs = totalUs - idleUs;
  const entries = [...groups.values()]
    .filter((g) => g.name !== '(idle)')
    .sort((a, b) => b.us - a.us)
    .map((g) => ({ name: g.name, where: g.where, selfMs: g.us / 1000, selfPct: (100 * g.us) / busyUs }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, entries };
}

/**
 * Which layer a function belongs to, from its name and script: the split that says whether a cost is ours,
 * undici's, Node's HTTP and stream machinery's, or the kernel's (native socket writes, named by the binding
 * that made them).
 */
function layerOf(name, where) {
  if (where === '' && /^(writev|writeBuffer|writeLatin1String|writeUtf8String|writeAsciiString)$/.test(name)) return 'socket write syscalls';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'libuv / native, unattributed';
  if (where.startsWith('undici/') || where.startsWith('wasm://')) return 'undici (incl. its llhttp wasm)';
  if (where.startsWith('prom-client/') || where.startsWith('pino')) return 'prom-client, pino';
  if (where.startsWith('dist/')) return 'Holdfast (dist/)';
  if (/^node:(_http_|internal\/http|http)/.test(where)) return "Node's HTTP server";
  if (/^node:(internal\/)?(streams?|stream_base_commons|events|net|buffer|timers|process|async_hooks)/.test(where)) return "Node's streams, events, net, timers";
  if (where.startsWith('node:internal/modules') || name === 'wrapSafe' || name === 'compileSourceTextModule' || name === 'readFileUtf8') return 'start-up (module loading)';
  return 'other';
}

/** Self time per layer (see layerOf), largest first, as % of busy time. */
export function layersOf(summary) {
  const layers = new Map();
  for (const e of summary.entries) layers.set(layerOf(e.name, e.where), (layers.get(layerOf(e.name, e.where)) ?? 0) + e.selfMs);
  const busyMs = summary.entries.reduce((a, e) => a + e.selfMs, 0);
  return [...layers].sort((a, b) => b[1] - a[1]).map(([layer, ms]) => ({ layer, selfMs: ms, selfPct: (100 * ms) / busyMs }));
}

function newestProfile(dir) {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f: join(dir, f), t: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0].f;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = process.argv[2] ?? fileURLToPath(new URL('.run/prof', import.meta.url));
  const top = Number(process.argv[3] ?? 25);
  const file = statSync(arg).isDirectory() ? newestProfile(arg) : arg;
  const { totalMs, idleMs, entries } = summarizeProfile(file);
  process.stdout.write(`${file}\n${totalMs.toFixed(0)} ms sampled, ${idleMs.toFixed(0)} ms idle (percentages are of busy time)\n\n`);
  process.stdout.write(`${'self %'.padStart(7)} ${'self ms'.padStart(8)}  function  (where)\n`);
  for (const e of entries.slice(0, top)) {
    process.stdout.write(`${e.selfPct.toFixed(1).padStart(7)} ${e.selfMs.toFixed(0).padStart(8)}  ${e.name}  ${e.where}\n`);
  }
  process.stdout.write('\nBy layer:\n');
  for (const l of layersOf({ entries })) process.stdout.write(`${l.selfPct.toFixed(1).padStart(7)} ${l.selfMs.toFixed(0).padStart(8)}  ${l.layer}\n`);
}
