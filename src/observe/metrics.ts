import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per Holdfast instance, so several instances in one process (tests, cluster workers) keep
 * their own numbers. `requests_total - upstream_connections_total` is the TCP handshakes pooling saved.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    clientConnectionsTotal: new Counter({
      name: 'holdfast_client_connections_total',
      help: 'Client TCP connections accepted',
      registers,
    }),
    clientConnectionsOpen: new Gauge({
      name: 'holdfast_client_connections_open',
      help: 'Client TCP connections open now',
      registers,
    }),
    clientConnectionsRejected: new Counter({
      name: 'holdfast_client_connections_rejected_total',
      help: 'Client connections answered 503 because a connection limit was reached, by limit (global, per-client) and error code',
      labelNames: ['limit', 'code'] as const,
      registers,
    }),
    clientConnectionsMax: new Gauge({
      name: 'holdfast_client_connections_max',
      help: 'Client connections allowed at once: limits.maxConnections, or less when the open-files limit cannot hold it',
      registers,
    }),
    clientConnectionsReclaimed: new Counter({
      name: 'holdfast_client_connections_reclaimed_total',
      help: 'Idle keep-alive client connections closed to admit a new one at a limit',
      registers,
    }),
    h2ConnectionsOpen: new Gauge({
      name: 'holdfast_h2_connections_open',
      help: 'Client connections speaking HTTP/2 now (ALPN h2 or h2c); counted in holdfast_client_connections_open too',
      registers,
    }),
    h2StreamsOpen: new Gauge({
      name: 'holdfast_h2_streams_open',
      help: 'HTTP/2 streams with a request being answered or held now, over all HTTP/2 connections',
      registers,
    }),
    tlsHandshakesTotal: new Counter({
      name: 'holdfast_tls_handshakes_total',
      help: 'TLS handshakes on the TLS client listener, by outcome (ok, failed)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    requestsTotal: new Counter({
      name: 'holdfast_requests_total',
      help: 'Client requests received',
      registers,
    }),
    responsesTotal: new Counter({
      name: 'holdfast_responses_total',
      help: 'Responses sent to clients by status class',
      labelNames: ['class'] as const,
      registers,
    }),
    clientErrorsTotal: new Counter({
      name: 'holdfast_client_errors_total',
      help: 'Requests refused at the edge (malformed, oversized, too slow), by error code',
      labelNames: ['code'] as const,
      registers,
    }),
    upstreamConnectionsTotal: new Counter({
      name: 'holdfast_upstream_connections_total',
      help: 'TCP connections opened to backends',
      labelNames: ['backend'] as const,
      registers,
    }),
    upstreamRequestsTotal: new Counter({
      name: 'holdfast_upstream_requests_total',
      help: 'Requests sent to backends, including retries',
      labelNames: ['backend'] as const,
      registers,
    }),
    upstreamErrorsTotal: new Counter({
      name: 'holdfast_upstream_errors_total',
      help: 'Failed backend exchanges by error code',
      labelNames: ['backend', 'code'] as const,
      registers,
    }),
    upstreamRetriesTotal: new Counter({
      name: 'holdfast_upstream_retries_total',
      help: 'Requests resent after a failure that proved the backend had not processed them',
      labelNames: ['backend'] as const,
      registers,
    }),
    backendUp: new Gauge({
      name: 'holdfast_backend_up',
      help: '1 when the backend is taking traffic, 0 when health checks marked it down',
      labelNames: ['group', 'backend'] as const,
      registers,
    }),
    backendTransitionsTotal: new Counter({
      name: 'holdfast_backend_transitions_total',
      help: 'Backends marked down or back up by active or passive health checks',
      labelNames: ['group', 'backend', 'to'] as const,
      registers,
    }),
    queueLength: new Gauge({
      name: 'holdfast_queue_length',
      help: 'Requests waiting for a free backend server, per group',
      labelNames: ['group'] as const,
      registers,
    }),
    queueWait: new Histogram({
      name: 'holdfast_queue_wait_seconds',
      help: 'Time requests waited in a group queue (served or timed out)',
      labelNames: ['group', 'outcome'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    queueRejectedTotal: new Counter({
      name: 'holdfast_queue_rejected_total',
      help: 'Requests answered 503 by a group queue, by reason (full, timeout)',
      labelNames: ['group', 'reason'] as const,
      registers,
    }),
    compressedTotal: new Counter({
      name: 'holdfast_compressed_responses_total',
      help: 'Responses compressed on the fly, by encoding',
      labelNames: ['encoding'] as const,
      registers,
    }),
    reloadsTotal: new Counter({
      name: 'holdfast_config_reloads_total',
      help: 'Configuration reloads, by outcome (applied, refused)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    heldConnections: new Gauge({
      name: 'holdfast_held_connections',
      help: 'Clients held by the push gateway, by transport',
      labelNames: ['transport'] as const,
      registers,
    }),
    subscriptions: new Gauge({
      name: 'holdfast_subscriptions',
      help: 'Channel subscriptions of held clients on this node',
      registers,
    }),
    channels: new Gauge({
      name: 'holdfast_channels',
      help: 'Distinct channels (and wildcard prefixes) held on this node',
      registers,
    }),
    published: new Counter({
      name: 'holdfast_messages_published_total',
      help: 'Items accepted by the publish API',
      registers,
    }),
    publishRefused: new Counter({
      name: 'holdfast_publish_refused_total',
      help: 'Publish requests refused by the publish API, by error code',
      labelNames: ['code'] as const,
      registers,
    }),
    deliveries: new Counter({
      name: 'holdfast_deliveries_total',
      help: 'Items written to held clients, by transport',
      labelNames: ['transport'] as const,
      registers,
    }),
    drops: new Counter({
      name: 'holdfast_drops_total',
      help: 'Items or clients dropped, by reason (slow_consumer, drain_timeout, filter, history_gap, duplicate, sequence)',
      labelNames: ['reason'] as const,
      registers,
    }),
    replayed: new Counter({
      name: 'holdfast_replayed_total',
      help: 'Items replayed from channel history to reconnecting clients',
      registers,
    }),
    wsConnections: new Gauge({
      name: 'holdfast_ws_connections',
      help: 'WebSocket connections open now, by mode (passthrough tunnel or over-http terminated here)',
      labelNames: ['mode'] as const,
      registers,
    }),
    wsConnectionsTotal: new Counter({
      name: 'holdfast_ws_connections_total',
      help: 'WebSocket connections established, by mode',
      labelNames: ['mode'] as const,
      registers,
    }),
    wsRejected: new Counter({
      name: 'holdfast_ws_handshakes_rejected_total',
      help: 'WebSocket handshakes that did not become connections, by error code (backend refusals count as HF_ERR_WS_REFUSED)',
      labelNames: ['code'] as const,
      registers,
    }),
    wsDeadPeers: new Counter({
      name: 'holdfast_ws_dead_peers_total',
      help: 'WebSocket peers closed for missing a pong deadline, and tunnels closed for idling, by mode',
      labelNames: ['mode'] as const,
      registers,
    }),
    wsMessages: new Counter({
      name: 'holdfast_ws_messages_total',
      help: 'Messages on terminated WebSockets: in from clients, out to clients',
      labelNames: ['direction'] as const,
      registers,
    }),
    wsClosedByPolicy: new Counter({
      name: 'holdfast_ws_closed_total',
      help: 'Terminated WebSockets closed by Holdfast, by close code (1001 drain, 1008 queue, 1009 too big, 1011 backend)',
      labelNames: ['code'] as const,
      registers,
    }),
    drainCutRequests: new Counter({
      name: 'holdfast_drain_cut_requests_total',
      help: 'Requests still unanswered when the drain deadline passed, whose connections were cut',
      registers,
    }),
    busMessages: new Counter({
      name: 'holdfast_bus_messages_total',
      help: 'Messages between this node and the bus engine: out = items this node published, in = items it received for channels it holds',
      labelNames: ['direction'] as const,
      registers,
    }),
    busUp: new Gauge({
      name: 'holdfast_bus_up',
      help: 'Whether the bus is usable (1) or connecting/reconnecting (0), by driver',
      labelNames: ['driver'] as const,
      registers,
    }),
    busReconnects: new Counter({
      name: 'holdfast_bus_reconnects_total',
      help: 'Times the bus connection was lost and established again',
      registers,
    }),
    busSubscriptions: new Gauge({
      name: 'holdfast_bus_subscriptions',
      help: 'Channels and wildcard prefixes this node is subscribed to in the bus engine',
      registers,
    }),
    requestDuration: new Histogram({
      name: 'holdfast_request_duration_seconds',
      help: 'From request head received to response finished',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
