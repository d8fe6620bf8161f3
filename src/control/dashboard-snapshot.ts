import type { Registry } from 'prom-client';
import { E } from '../errors.js';

/**
 * What the dashboard shows, built from the same registry /metrics serves (so the page and a Prometheus
 * scrape never disagree) plus the two things the registry does not have: channel names with their
 * subscriber counts (the hold manager's index; a label per channel would be unbounded) and the bus state.
 */

/** One metric as prom-client's `get()` and `getMetricsAsJSON()` give it (and the cluster aggregate). */
export interface MetricSamples {
  name: string;
  values: readonly { value: number; labels: Readonly<Record<string, string | number | undefined>> }[];
}

/** The metric names the dashboard reads; a cluster aggregate or a registry is asked for these only. */
export const DASHBOARD_METRICS = [
  'holdfast_client_connections_open',
  'holdfast_client_connections_max',
  'holdfast_upstream_connections_open',
  'holdfast_upstream_in_flight',
  'holdfast_held_connections',
  'holdfast_ws_connections',
  'holdfast_requests_total',
  'holdfast_messages_published_total',
  'holdfast_deliveries_total',
  'holdfast_drops_total',
  'holdfast_backend_up',
  'holdfast_queue_length',
  'holdfast_client_connections_rejected_total',
  'holdfast_client_errors_total',
  'holdfast_ws_handshakes_rejected_total',
  'holdfast_queue_rejected_total',
  'holdfast_publish_refused_total',
] as const;

export interface ChannelCounts {
  /** Distinct channels and wildcard prefixes held. */
  total: number;
  /** Channel subscriptions of held clients (a client on two channels counts twice). */
  subscriptions: number;
  /** The channels with the most subscribers, most first; null when the viewer may not see channel names. */
  top: { name: string; subscribers: number }[] | null;
}

export interface DashboardSnapshot {
  atMs: number;
  /** Whose numbers these are: this process, or (with workers) which part of the machine. */
  scope: string;
  connections: {
    client: number;
    clientMax: number;
    /** Pooled connections open to backends. */
    backend: number;
    held: { sse: number; longPoll: number; stream: number; websocket: number };
    /** WebSockets relayed to a backend as they are (not held here). */
    wsTunnels: number;
  };
  channels: ChannelCounts;
  rates: {
    windowSeconds: number;
    requestsPerSecond: number;
    publishedPerSecond: number;
    deliveredPerSecond: number;
    requestsTotal: number;
    publishedTotal: number;
    deliveredTotal: number;
  };
  drops: Record<string, number>;
  backends: { group: string; server: string; up: boolean; inFlight: number; connections: number }[];
  groups: { name: string; queue: number }[];
  bus: { driver: string; state: string };
  refusals: Record<string, number>;
}

/** Transports as the hold manager labels them, and what the dashboard calls them. */
const HELD_TRANSPORTS = { sse: 'sse', response: 'longPoll', stream: 'stream', ws: 'websocket' } as const;

/** A group queue's refusal reasons are the codes its 503s carry (src/proxy/group.ts). */
const QUEUE_REFUSAL_CODES: Record<string, string> = { full: E.QUEUE_FULL.code, timeout: E.QUEUE_TIMEOUT.code };

interface RateSample {
  atMs: number;
  requests: number;
  published: number;
  delivered: number;
}

/**
 * Request, publish and delivery counters sampled once a tick; rates are the change over the oldest sample still
 * inside the window, so one busy second moves the rate and then leaves it.
 */
export class RateWindow {
  readonly windowMs: number;
  readonly #samples: RateSample[] = [];

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  add(sample: RateSample): DashboardSnapshot['rates'] {
    const { atMs, requests, published, delivered } = sample;
    this.#samples.push(sample);
    while (this.#samples.length > 2 && atMs - this.#samples[1]!.atMs >= this.windowMs) this.#samples.shift();
    const first = this.#samples[0]!;
    const seconds = (atMs - first.atMs) / 1000;
    // A counter that went down belongs to another registry (a worker restarted): no rate rather than a negative one.
    const rate = (now: number, then: number) => (seconds <= 0 || now < then ? 0 : (now - then) / seconds);
    return {
      windowSeconds: Math.round(seconds * 10) / 10,
      requestsPerSecond: rate(requests, first.requests),
      publishedPerSecond: rate(published, first.published),
      deliveredPerSecond: rate(delivered, first.delivered),
      requestsTotal: requests,
      publishedTotal: published,
      deliveredTotal: delivered,
    };
  }
}

export interface SnapshotInputs {
  atMs: number;
  scope: string;
  metrics: readonly MetricSamples[];
  channels: ChannelCounts;
  bus: { driver: string; state: string };
  rates: RateWindow;
}

export function buildSnapshot(inputs: SnapshotInputs): DashboardSnapshot {
  const byName = new Map(inputs.metrics.map((m) => [m.name, m.values]));
  const samples = (name: string) => byName.get(name) ?? [];
  const total = (name: string) => samples(name).reduce((sum, s) => sum + s.value, 0);
  const byLabel = (name: string, label: string, into: Record<string, number> = {}, rename: (v: string) => string = (v) => v) => {
    for (const s of samples(name)) {
      const key = rename(String(s.labels[label] ?? ''));
      if (s.value !== 0) into[key] = (into[key] ?? 0) + s.value;
    }
    return into;
  };

  const held = { sse: 0, longPoll: 0, stream: 0, websocket: 0 };
  for (const s of samples('holdfast_held_connections')) {
    const key = HELD_TRANSPORTS[String(s.labels.transport) as keyof typeof HELD_TRANSPORTS];
    if (key !== undefined) held[key] += s.value;
  }
  const connectionsByBackend = byLabel('holdfast_upstream_connections_open', 'backend');
  const inFlight = new Map(samples('holdfast_upstream_in_flight').map((s) => [`${s.labels.group} ${s.labels.backend}`, s.value]));
  const backends = samples('holdfast_backend_up').map((s) => {
    const group = String(s.labels.group);
    const server = String(s.labels.backend);
    return { group, server, up: s.value > 0, inFlight: inFlight.get(`${group} ${server}`) ?? 0, connections: connectionsByBackend[server] ?? 0 };
  });
  const queues = byLabel('holdfast_queue_length', 'group');
  const refusals: Record<string, number> = {};
  byLabel('holdfast_client_connections_rejected_total', 'code', refusals);
  byLabel('holdfast_client_errors_total', 'code', refusals);
  byLabel('holdfast_ws_handshakes_rejected_total', 'code', refusals);
  byLabel('holdfast_queue_rejected_total', 'reason', refusals, (reason) => QUEUE_REFUSAL_CODES[reason] ?? reason);
  byLabel('holdfast_publish_refused_total', 'code', refusals);

  return {
    atMs: inputs.atMs,
    scope: inputs.scope,
    connections: {
      client: total('holdfast_client_connections_open'),
      clientMax: total('holdfast_client_connections_max'),
      backend: total('holdfast_upstream_connections_open'),
      held,
      wsTunnels: samples('holdfast_ws_connections').reduce((sum, s) => sum + (s.labels.mode === 'passthrough' ? s.value : 0), 0),
    },
    channels: inputs.channels,
    rates: inputs.rates.add({
      atMs: inputs.atMs,
      requests: total('holdfast_requests_total'),
      published: total('holdfast_messages_published_total'),
      delivered: total('holdfast_deliveries_total'),
    }),
    drops: byLabel('holdfast_drops_total', 'reason'),
    backends,
    groups: [...new Set(backends.map((b) => b.group))].map((name) => ({ name, queue: queues[name] ?? 0 })),
    bus: inputs.bus,
    refusals,
  };
}

/** What the dashboard needs of the hold manager's channel index. */
export interface ChannelIndexView {
  readonly channelCount: number;
  readonly subscriptionCount: number;
  top(limit: number): { name: string; holders: number }[];
}

export interface DashboardSourceDeps {
  /** The DASHBOARD_METRICS samples: this registry's, or the machine's aggregate with workers. */
  readMetrics(): Promise<readonly MetricSamples[]>;
  channels: ChannelIndexView;
  bus: { readonly driver: string; readonly state: string };
  scope: string;
  /** Channels listed by name. @default 20 */
  topChannels?: number;
  /** @default 10000 */
  rateWindowMs?: number;
}

/** The snapshot function the feed calls once a tick. */
export function dashboardSource(deps: DashboardSourceDeps): () => Promise<DashboardSnapshot> {
  const rates = new RateWindow(deps.rateWindowMs ?? 10_000);
  const topChannels = deps.topChannels ?? 20;
  return async () => {
    const metrics = await deps.readMetrics();
    const { channels, bus } = deps;
    return buildSnapshot({
      atMs: Date.now(),
      scope: deps.scope,
      metrics,
      channels: {
        total: channels.channelCount,
        subscriptions: channels.subscriptionCount,
        top: channels.top(topChannels).map((c) => ({ name: c.name, subscribers: c.holders })),
      },
      bus: { driver: bus.driver, state: bus.state },
      rates,
    });
  };
}

/** Reads the dashboard's metrics from one registry (collect hooks run, as for a scrape). */
export function registryMetrics(registry: Registry): () => Promise<MetricSamples[]> {
  return async () => {
    const found: MetricSamples[] = [];
    for (const name of DASHBOARD_METRICS) {
      const metric = registry.getSingleMetric(name);
      if (metric !== undefined) found.push(await metric.get());
    }
    return found;
  };
}
