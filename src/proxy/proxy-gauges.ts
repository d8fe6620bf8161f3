import { Gauge } from 'prom-client';
import type { Metrics } from '../observe/metrics.js';
import type { Routing } from './routing.js';

/**
 * Gauges read from the live groups when scraped, so the request path pays nothing for them: requests in
 * flight per server (its concurrency slots in use) and the pooled connections undici holds open to it. A
 * retired group (a reload) still finishing requests adds to the same server's numbers.
 */
export function registerProxyGauges(metrics: Metrics, routing: Routing): void {
  const registers = [metrics.registry];
  new Gauge({
    name: 'holdfast_upstream_in_flight',
    help: 'Requests holding a concurrency slot of a backend server now (sent, or being retried on it), by group and server',
    labelNames: ['group', 'backend'] as const,
    registers,
    collect() {
      this.reset();
      for (const group of routing.liveGroups()) {
        for (const server of group.servers) this.inc({ group: group.name, backend: server.name }, server.outstanding);
      }
    },
  });
  new Gauge({
    name: 'holdfast_upstream_connections_open',
    help: 'Pooled TCP connections open to a backend server now (WebSocket tunnels and unpooled requests not included)',
    labelNames: ['backend'] as const,
    registers,
    collect() {
      this.reset();
      for (const group of routing.liveGroups()) {
        for (const server of group.servers) this.inc({ backend: server.name }, server.pool.stats.connected);
      }
    },
  });
}
