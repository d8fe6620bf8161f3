import { httpGet } from './processes.mjs';

/**
 * nginx stub_status: `Active connections: N\nserver accepts handled requests\n A H R\n...`. `accepts` counts
 * every TCP connection the backend accepted, including the one this query arrives on.
 */
export async function backendCounters(statusUrl) {
  const { body } = await httpGet(statusUrl);
  const match = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(body.toString());
  if (match === null) throw new Error(`unexpected stub_status answer: ${body}`);
  return { accepts: Number(match[1]), requests: Number(match[3]) };
}

/** Difference between two readings, minus the status query's own connection and request. */
export function backendDelta(before, after) {
  return { connections: after.accepts - before.accepts - 1, requests: after.requests - before.requests - 1 };
}

/** Holdfast's own count of backend connections, a cross-check of the backend's view. */
export async function holdfastUpstreamConnections(metricsUrl) {
  const { body } = await httpGet(metricsUrl);
  let total = 0;
  for (const line of body.toString().split('\n')) {
    if (line.startsWith('holdfast_upstream_connections_total{')) total += Number(line.split(' ').pop());
  }
  return total;
}
