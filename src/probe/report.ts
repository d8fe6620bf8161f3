import { CHECK_TITLES } from './check.js';
import type { ProbeReport } from './probe.js';

const TITLE_WIDTH = Math.max(...Object.values(CHECK_TITLES).map((t) => t.length));

/** One line per check, `ok`/`warn`/`fail`/`skip` first so the eye (or grep) finds the problems. */
export function renderText(report: ProbeReport): string {
  const lines = [`holdfast probe ${report.url}${report.server === null ? '' : `  (Server: ${report.server})`}`];
  for (const c of report.checks) lines.push(`  ${c.verdict.padEnd(4)}  ${CHECK_TITLES[c.id].padEnd(TITLE_WIDTH)}  ${c.evidence}`);
  for (const note of report.notes) lines.push(`  note: ${note}`);
  const { ok, warn, fail, skip } = report.summary;
  lines.push(`${ok} ok, ${warn} warn, ${fail} fail${skip > 0 ? `, ${skip} skipped` : ''} in ${(report.durationMs / 1000).toFixed(1)} s`);
  return `${lines.join('\n')}\n`;
}

/** The report as one JSON document (keys documented in the README, "Probe a server"). */
export function renderJson(report: ProbeReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
