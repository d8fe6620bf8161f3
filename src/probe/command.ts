import { parseArgs } from 'node:util';
import { ProbeUnreachableError } from './connection.js';
import { PROBE_DEFAULTS, runProbe, type ProbeOptions } from './probe.js';
import { renderJson, renderText } from './report.js';
import { ProbeUsageError } from './target.js';

export const PROBE_HELP = `Usage: holdfast probe URL [options]

Asks a server what it does with connections and prints one line per check (ok, warn, fail, skip) with the
evidence: HTTP/1.1 and 1.0 keep-alive, requests per connection, idle timeout, pipelining, Connection: close;
an SSE URL's stream, ids, heartbeats and Last-Event-ID; a ws:// URL's upgrade, ping, echo and close.

Options:
  --json                 the report as JSON (stable keys; see the README, "Probe a server")
  --timeout <ms>         connect and wait for each answer (default ${PROBE_DEFAULTS.timeoutMs})
  --max-requests <n>     requests on one connection before reporting "at least n" (default ${PROBE_DEFAULTS.maxRequests})
  --idle-max <s>         longest wait for the idle close, then "at least"; 0 skips it (default ${PROBE_DEFAULTS.idleMaxMs / 1000})
  --sse                  the URL is an SSE stream (found by itself when the plain answer is text/event-stream)
  --sse-wait <s>         longest read of the stream for events and heartbeats (default ${PROBE_DEFAULTS.sseWaitMs / 1000})
  --ws                   also the WebSocket checks, on the ws:// form of an http:// URL

Exit codes: 0 when the probe ran, whatever it found; 1 when the server could not be reached; 2 on bad usage.
`;

export interface CommandOutcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** `holdfast probe ...`: returns what to print and the exit code (main.ts alone exits). */
export async function probeCommand(args: string[]): Promise<CommandOutcome> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean' },
        timeout: { type: 'string' },
        'max-requests': { type: 'string' },
        'idle-max': { type: 'string' },
        sse: { type: 'boolean' },
        'sse-wait': { type: 'string' },
        ws: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage(`${(err as Error).message.replace(/\.$/, '')}`);
  }
  const { values, positionals } = parsed;
  if (values.help === true) return { exitCode: 0, stdout: PROBE_HELP, stderr: '' };
  if (positionals.length !== 1) return usage(positionals.length === 0 ? 'probe needs a URL' : `probe takes one URL, got ${positionals.length}`);
  const numbers = {
    timeout: wholeNumber('timeout', values.timeout, PROBE_DEFAULTS.timeoutMs, 1),
    maxRequests: wholeNumber('max-requests', values['max-requests'], PROBE_DEFAULTS.maxRequests, 1),
    idleMax: wholeNumber('idle-max', values['idle-max'], PROBE_DEFAULTS.idleMaxMs / 1000, 0),
    sseWait: wholeNumber('sse-wait', values['sse-wait'], PROBE_DEFAULTS.sseWaitMs / 1000, 0),
  };
  for (const n of Object.values(numbers)) if (typeof n === 'string') return usage(n);
  const options: ProbeOptions = {
    url: positionals[0]!,
    timeoutMs: numbers.timeout as number,
    maxRequests: numbers.maxRequests as number,
    idleMaxMs: (numbers.idleMax as number) * 1000,
    sseWaitMs: (numbers.sseWait as number) * 1000,
    sse: values.sse === true,
    ws: values.ws === true,
  };
  try {
    const report = await runProbe(options);
    return { exitCode: 0, stdout: values.json === true ? renderJson(report) : renderText(report), stderr: '' };
  } catch (err) {
    if (err instanceof ProbeUnreachableError) return { exitCode: 1, stdout: '', stderr: `holdfast probe: ${err.message}\n` };
    if (err instanceof ProbeUsageError) return usage(err.message);
    throw err;
  }
}

function usage(message: string): CommandOutcome {
  return { exitCode: 2, stdout: '', stderr: `holdfast probe: ${message}\nRun holdfast probe --help for the options.\n` };
}

/** The value, the default when absent, or a message naming the flag. */
function wholeNumber(flag: string, value: string | undefined, fallback: number, min: number): number | string {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min) return `--${flag}: expected a whole number${min > 0 ? ` of at least ${min}` : ''}, got "${value}"`;
  return n;
}
