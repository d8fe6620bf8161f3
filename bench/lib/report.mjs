import { appendFileSync, existsSync, writeFileSync } from 'node:fs';

const ms = (us) => (us / 1000).toFixed(2);

/** A Markdown table, so the same text goes to the terminal and to RESULTS.md. */
export function markdownTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(headers), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

export function resultsTable(rows) {
  return markdownTable(
    ['target', 'size', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'vs direct', 'backend conns / reqs', 'CPU us/req', 'faults/req', 'errors'],
    rows.map((r) => [
      r.target,
      r.size,
      r.connections,
      Math.round(r.rps).toLocaleString('en-US'),
      ms(r.p50Us),
      ms(r.p99Us),
      r.target === 'direct' ? '1.00' : (r.rps / r.directRps).toFixed(2),
      r.backend === null ? '-' : `${r.backend.connections} / ${r.backend.requests.toLocaleString('en-US')}`,
      r.cpu === null ? '-' : r.cpu.usPerRequest.toFixed(1),
      r.cpu === null ? '-' : r.cpu.faultsPerRequest.toFixed(2),
      r.errorCount,
    ]),
  );
}

/** The targets, per cell: throughput vs http-proxy and HAProxy, p99 vs HAProxy. */
/** Rows whose core was shared with something else for a noticeable part of the run. */
export function noiseNotes(rows) {
  const notes = [];
  for (const r of rows) {
    const why = [];
    if (r.busyBeforePct > 8) why.push(`machine ${r.busyBeforePct.toFixed(0)}% busy before the cell`);
    if (r.cpu !== null && r.cpu.otherPct > 10) why.push(`other processes used ${r.cpu.otherPct.toFixed(0)}% of core 1`);
    if (why.length > 0) notes.push(`- ${r.target} ${r.size} c=${r.connections}: ${why.join(', ')}`);
  }
  return notes.join('\n');
}

export function targetsTable(rows) {
  const find = (target, r) => rows.find((x) => x.target === target && x.size === r.size && x.connections === r.connections);
  const out = [];
  for (const hf of rows.filter((r) => r.target === 'holdfast')) {
    const hp = find('http-proxy', hf);
    const ha = find('haproxy', hf);
    if (hp === undefined || ha === undefined) continue;
    const vsHp = hf.rps / hp.rps;
    const vsHa = hf.rps / ha.rps;
    const p99 = hf.p99Us / ha.p99Us;
    out.push([
      hf.size,
      hf.connections,
      `${vsHp.toFixed(2)}x ${vsHp >= 2 ? 'met' : 'MISSED'}`,
      `${vsHa.toFixed(2)}x ${vsHa >= 0.8 ? 'met' : 'MISSED'}`,
      `${p99.toFixed(2)}x ${p99 <= 1.5 ? 'met' : 'MISSED'}`,
    ]);
  }
  return markdownTable(
    ['size', 'conns', 'Holdfast/http-proxy req/s (>= 2x)', 'Holdfast/HAProxy req/s (>= 0.8x)', 'Holdfast/HAProxy p99 (<= 1.5x)'],
    out,
  );
}

const HEADER = `# Benchmark results

Appended by the scripts in this folder; newest last. Each section names the exact command and the date.

Method (see README.md): a 2-core machine. The backend is nginx serving two static files from its open-file cache
(\`/small\` 13 bytes, \`/10k\` 10,240 bytes) with keep-alive effectively unlimited, pinned with \`wrk\` (one
thread) to core 0; the proxy under test has core 1 to itself (taskset), one core's worth each: nginx
\`worker_processes 1\`, HAProxy \`nbthread 1\`, Holdfast and http-proxy a single Node process. \`direct\` is wrk
against the backend. Each cell is a warm-up run followed by the measured run; the targets take turns within a
cell. "backend conns / reqs" is read from the backend's stub_status over warm-up plus measured run: the TCP
connections the proxy opened and the requests it sent in that time. "CPU us/req" is the proxy's own CPU time
(utime + stime of its process tree, from /proc) over the measured run divided by the requests served: it stays
meaningful when another job on the machine takes cycles and req/s drops. Rows where something else used more
than 10% of core 1, or that started on a busy machine, are listed under the table.
`;

export function appendResults(file, section) {
  if (!existsSync(file)) writeFileSync(file, HEADER);
  appendFileSync(file, `\n${section.trimEnd()}\n`);
}
