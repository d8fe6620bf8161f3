// Draws bench/plots/sse-fanout.svg from the numbers recorded in bench/RESULTS.md: SSE fan-out p99 latency and
// server CPU per delivery against the number of subscribers, one line per peer. Each point names the run it
// comes from (the `started` stamp of its section) and is read from that section's table, so the plot cannot
// drift from the log. No dependency: the SVG is written by hand.
//   node bench/lib/plot-fanout.mjs            (from the repository root, or from bench/)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const RESULTS = fileURLToPath(new URL('../RESULTS.md', import.meta.url));
const OUT = fileURLToPath(new URL('../plots/sse-fanout.svg', import.meta.url));

/** The peers drawn: the name of their rows in RESULTS.md, a label and a colour. */
const PEERS = [
  { peer: 'holdfast', label: 'Holdfast', color: '#1f6feb' },
  { peer: 'nchan', label: 'nchan', color: '#2da44e' },
  { peer: 'pushpin-raised', label: 'Pushpin (raised limits)', color: '#cf222e' },
];

/** The latest recorded run for each peer and subscriber count (RESULTS.md "Current standing" cites the same). */
const POINTS = [
  // peer, subscribers, the run's `started` stamp
  ['holdfast', 1000, '2026-11-25T23:25:25.983Z'],
  ['holdfast', 5000, '2026-11-25T23:25:25.983Z'],
  ['holdfast', 15000, '2026-11-26T04:04:46.275Z'],
  ['holdfast', 100000, '2026-12-02T08:17:15.294Z'],
  ['nchan', 1000, '2026-11-25T22:42:43.853Z'],
  ['nchan', 5000, '2026-11-25T22:42:43.853Z'],
  ['nchan', 15000, '2026-11-26T04:04:46.275Z'],
  ['nchan', 100000, '2026-12-02T08:17:15.294Z'],
  ['pushpin-raised', 1000, '2026-11-25T22:42:43.853Z'],
  ['pushpin-raised', 5000, '2026-11-25T22:42:43.853Z'],
  ['pushpin-raised', 15000, '2026-11-25T22:42:43.853Z'],
];

/** The row of `peer` at `n` subscribers in the section whose command line says `started <run>`. */
function recorded(markdown, run, peer, n) {
  const sections = markdown.split(/^## /m).filter((s) => s.includes(`started ${run}`));
  for (const section of sections) {
    const lines = section.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i].startsWith('| peer |')) continue;
      const header = cells(lines[i]);
      const nColumn = header.indexOf(header.includes('N') ? 'N' : 'subscribers');
      for (let j = i + 2; j < lines.length && lines[j].startsWith('|'); j++) {
        const row = cells(lines[j]);
        if (row[0] !== peer || Number(row[nColumn]) !== n) continue;
        const value = (name) => Number(row[header.indexOf(name)]);
        return { p99Ms: value('p99 (ms)'), cpuUsPerDelivery: value('server CPU / delivery (us)') };
      }
    }
  }
  throw new Error(`RESULTS.md has no row for ${peer} at ${n} in the run started ${run}`);
}

function cells(line) {
  return line.split('|').slice(1, -1).map((c) => c.trim());
}

const markdown = readFileSync(RESULTS, 'utf8');
const data = PEERS.map((s) => ({
  ...s,
  values: POINTS.filter(([peer]) => peer === s.peer).map(([peer, n, run]) => ({ n, ...recorded(markdown, run, peer, n) })),
}));

// Two panels side by side, log-scaled subscribers on x.
const W = 920;
const H = 400;
const panel = { w: 360, h: 250, top: 60 };
const lefts = [70, 530];
const xMin = Math.log10(800);
const xMax = Math.log10(130000);
const x = (left, n) => left + ((Math.log10(n) - xMin) / (xMax - xMin)) * panel.w;
const axes = [
  { title: 'p99 latency, publish to subscriber (ms, log)', log: true, min: 10, max: 10000, ticks: [10, 100, 1000, 10000], key: 'p99Ms' },
  { title: 'server CPU per delivery (µs)', log: false, min: 0, max: 80, ticks: [0, 20, 40, 60, 80], key: 'cpuUsPerDelivery' },
];
const y = (axis, v) => {
  const f = axis.log ? (Math.log10(v) - Math.log10(axis.min)) / (Math.log10(axis.max) - Math.log10(axis.min)) : (v - axis.min) / (axis.max - axis.min);
  return panel.top + panel.h - f * panel.h;
};
const fmt = (v) => (v >= 1000 ? `${v / 1000}k` : String(v));

const svg = [];
svg.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
svg.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
svg.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">SSE fan-out: one publish to N subscribers on one channel</text>`);
axes.forEach((axis, k) => {
  const left = lefts[k];
  svg.push(`<text x="${left + panel.w / 2}" y="${panel.top - 12}" text-anchor="middle" font-weight="bold">${axis.title}</text>`);
  svg.push(`<rect x="${left}" y="${panel.top}" width="${panel.w}" height="${panel.h}" fill="none" stroke="#888"/>`);
  for (const t of axis.ticks) {
    const ty = y(axis, t);
    svg.push(`<line x1="${left}" x2="${left + panel.w}" y1="${ty}" y2="${ty}" stroke="#eee"/>`);
    svg.push(`<text x="${left - 6}" y="${ty + 4}" text-anchor="end">${t}</text>`);
  }
  for (const n of [1000, 5000, 15000, 100000]) {
    const tx = x(left, n);
    svg.push(`<line x1="${tx}" x2="${tx}" y1="${panel.top}" y2="${panel.top + panel.h}" stroke="#eee"/>`);
    svg.push(`<text x="${tx}" y="${panel.top + panel.h + 16}" text-anchor="middle">${fmt(n)}</text>`);
  }
  svg.push(`<text x="${left + panel.w / 2}" y="${panel.top + panel.h + 34}" text-anchor="middle">subscribers (log)</text>`);
  for (const s of data) {
    const pts = s.values.map((v) => `${x(left, v.n).toFixed(1)},${y(axis, v[axis.key]).toFixed(1)}`);
    svg.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const v of s.values) {
      svg.push(`<circle cx="${x(left, v.n).toFixed(1)}" cy="${y(axis, v[axis.key]).toFixed(1)}" r="3.5" fill="${s.color}"><title>${s.label}, ${v.n}: ${v[axis.key]}</title></circle>`);
    }
  }
});
data.forEach((s, i) => {
  const lx = 70 + i * 210;
  svg.push(`<line x1="${lx}" x2="${lx + 24}" y1="${H - 38}" y2="${H - 38}" stroke="${s.color}" stroke-width="2"/>`);
  svg.push(`<text x="${lx + 30}" y="${H - 34}">${s.label}</text>`);
});
svg.push(`<text x="70" y="${H - 10}" fill="#666">Each point is the latest recorded run at that size (bench/RESULTS.md, Current standing); runs differ in date and machine load. 100k: 8 processes each.</text>`);
svg.push('</svg>');
writeFileSync(OUT, `${svg.join('\n')}\n`);
for (const s of data) for (const v of s.values) console.log(`${s.label}\t${v.n}\tp99 ${v.p99Ms} ms\tCPU ${v.cpuUsPerDelivery} us/delivery`);
console.log(`wrote ${OUT}`);
