// Self and inclusive time per function in a V8 .cpuprofile, counting only samples taken after the first
// sample inside a function named `--from` (default `publish`): for the fan-out bench that cuts away the
// connect phase and leaves the delivery phase (warm-up and measured messages, then shutdown).
//   node bench/fanout/profile-window.mjs FILE.cpuprofile [--from publish] [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { from: { type: 'string', default: 'publish' }, top: { type: 'string', default: '30' } } });
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const label = (n) => {
  const f = n.callFrame;
  const url = f.url.replace(/^file:\/\/.*\/(dist|node_modules)\//, '$1/');
  return `${f.functionName || '(anonymous)'} ${url}${f.url ? `:${f.lineNumber + 1}` : ''}`;
};
const stackOf = (id) => {
  const out = [];
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) out.push(cur);
  return out;
};

let t = profile.startTime;
let started = false;
let total = 0;
let idle = 0;
const self = new Map();
const incl = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i];
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const id = profile.samples[i];
  const stack = stackOf(id);
  if (!started) {
    if (stack.some((s) => byId.get(s).callFrame.functionName === values.from)) started = true;
    else continue;
  }
  const name = byId.get(id).callFrame.functionName;
  if (name === '(idle)') {
    idle += dt;
    continue;
  }
  total += dt;
  const l = label(byId.get(id));
  self.set(l, (self.get(l) ?? 0) + dt);
  for (const s of new Set(stack.map((x) => label(byId.get(x))))) incl.set(s, (incl.get(s) ?? 0) + dt);
}
const top = Number(values.top);
console.log(`window: ${(total / 1000).toFixed(0)} ms busy, ${(idle / 1000).toFixed(0)} ms idle`);
console.log('\nself ms   self%  function');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1000).toFixed(0).padStart(7)} ${((100 * v) / total).toFixed(1).padStart(6)}  ${k}`);
console.log('\nincl ms   incl%  function');
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(v / 1000).toFixed(0).padStart(7)} ${((100 * v) / total).toFixed(1).padStart(6)}  ${k}`);
