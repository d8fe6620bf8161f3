import { isIPv4 } from 'node:net';
import { z } from 'zod';

/** `host:port`, `:port` or `[v6]:port`, as nginx and HAProxy write a bind address. */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string): HostPort | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(text);
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const hostPort = z.string().refine((s) => parseHostPort(s) !== null, {
  message: 'host:port, such as 127.0.0.1:8080 or [::1]:8080',
});

const backendUrl = z.string().refine(
  (s) => {
    try {
      const url = new URL(s);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.pathname === '/' && !url.search && !url.username;
    } catch {
      return false;
    }
  },
  { message: 'an http:// or https:// origin such as http://127.0.0.1:3000 (no path, query or credentials)' },
);

const certificateFiles = z.strictObject({
  /** PEM certificate file (the chain after it, if any). */
  cert: z.string().min(1),
  /** PEM private key file of that certificate. */
  key: z.string().min(1),
});

const tlsSchema = z
  .strictObject({
    /** TLS client listener (HTTP/1.1 over TLS) beside the plain `listen`; absent = none. */
    listen: hostPort.optional(),
    /**
     * Certificates, each chosen by SNI from its own names (subjectAltName, else CN; wildcards one label deep);
     * the first is the default for other names and clients without SNI. Re-read by SIGHUP and POST /reload.
     * @default []
     */
    certificates: z.array(certificateFiles).default([]),
    /** Shortcut for one certificate (the `--tls-cert` flag): put first in `certificates`. */
    cert: z.string().min(1).optional(),
    /** Its key (`--tls-key`). */
    key: z.string().min(1).optional(),
    /** PEM file of the CAs that https:// backends' certificates must chain to, instead of Node's bundled roots. */
    backendCa: z.string().min(1).optional(),
  })
  .superRefine((tls, ctx) => {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      ctx.addIssue({ code: 'custom', path: [tls.cert === undefined ? 'cert' : 'key'], message: 'tls.cert and tls.key go together' });
    }
    if (tls.listen !== undefined && tls.certificates.length === 0 && tls.cert === undefined) {
      ctx.addIssue({ code: 'custom', path: ['certificates'], message: 'at least one certificate (cert and key files) for tls.listen' });
    }
  })
  .transform(({ cert, key, ...tls }) => ({
    ...tls,
    certificates: cert !== undefined && key !== undefined ? [{ cert, key }, ...tls.certificates] : tls.certificates,
  }));

/** `memory`, or the URL of the engine several Holdfast processes share channels through. */
export function parseBusUrl(text: string): { driver: 'memory' } | { driver: 'redis' | 'nats'; url: URL } | null {
  if (text === 'memory') return { driver: 'memory' };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.hostname === '' || url.search !== '' || url.hash !== '') return null;
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    return /^\/?(\d{1,2})?$/.test(url.pathname) ? { driver: 'redis', url } : null;
  }
  if (url.protocol === 'nats:' || url.protocol === 'tls:') return url.pathname === '' || url.pathname === '/' ? { driver: 'nats', url } : null;
  return null;
}

const busUrl = z.string().refine((s) => parseBusUrl(s) !== null, {
  message: 'memory, redis://host:port[/db] or nats://host:port',
});

const ms = (min: number) => z.number().int().min(min);
const count = (min: number) => z.number().int().min(min);

export const limitsSchema = z.strictObject({
  /** Client connections held at once; at the limit idle keep-alive ones are reclaimed first. @default 10000 */
  maxConnections: count(1).default(10_000),
  /** Client connections from one address. @default 1000 */
  maxConnectionsPerClient: count(1).default(1_000),
  /** Requests served on one client connection before it is closed; 0 means no cap. @default 1000 */
  maxRequestsPerConnection: count(0).default(1_000),
  /** Request line plus headers, in bytes (Node's parser, 431 beyond). @default 16384 */
  maxHeaderBytes: count(1024).max(1_048_576).default(16_384),
  /**
   * Header fields in one request head, 431 beyond (Apache's LimitRequestFields; HAProxy allows 101). Without it
   * Node's parser would silently drop every field past its 2000th pair. @default 100
   */
  maxHeaderFields: count(1).max(10_000).default(100),
  /**
   * HTTP/2 streams one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS; nginx's
   * http2_max_concurrent_streams has the same default). Each counts as a request, not a connection. @default 128
   */
  maxConcurrentStreams: count(1).max(2_147_483_647).default(128),
  /** Requests of one pipeline sent to backends at once (safe methods only). @default 8 */
  maxPipelinedInFlight: count(1).default(8),
});

export const timeoutsSchema = z.strictObject({
  /** The whole request head must arrive within this (slowloris defence). @default 10000 */
  requestHeadMs: ms(100).default(10_000),
  /** A keep-alive connection with no request in progress is closed after this. @default 15000 */
  keepAliveIdleMs: ms(100).default(15_000),
  /** A request body that makes no progress for this long is answered 408 and closed. @default 30000 */
  requestBodyStallMs: ms(100).default(30_000),
  /** Opening a backend connection. @default 5000 */
  upstreamConnectMs: ms(10).default(5_000),
  /** Waiting for a backend's response head: 504 after. @default 60000 */
  upstreamResponseMs: ms(10).default(60_000),
  /** A backend response body that makes no progress for this long is cut off. @default 120000 */
  upstreamBodyStallMs: ms(10).default(120_000),
  /**
   * A client connection with sent data queued that the client has not read any of for this long is cut: held
   * streams, SSE, terminated WebSockets and proxied responses (nginx's send_timeout). @default 30000
   */
  sendStallMs: ms(100).default(30_000),
  /** On SIGTERM/SIGINT, in-flight requests get this long to finish before connections are cut. @default 15000 */
  drainMs: ms(0).default(15_000),
});

export const upstreamSchema = z.strictObject({
  /** Pooled connections per backend; requests beyond wait for one. @default 128 */
  maxConnectionsPerBackend: count(1).default(128),
  /** An idle pooled connection is closed after this, or sooner if the backend's Keep-Alive hint is lower. @default 4000 */
  keepAliveIdleMs: ms(100).default(4_000),
  /** Extra attempts for a request that is safe to resend (see proxy/retry-policy.ts). @default 2 */
  retries: count(0).max(10).default(2),
  /** Failures within failTimeoutMs that mark a backend down, nginx's max_fails. @default 1 */
  maxFails: count(1).default(1),
  /** How long a backend marked down by passive checks is skipped, nginx's fail_timeout. @default 10000 */
  failTimeoutMs: ms(100).default(10_000),
});

const serverSchema = z.strictObject({
  /** Backend origin. */
  url: backendUrl,
  /** Relative share of traffic; 0 keeps the server configured but sends it nothing. @default 1 */
  weight: count(0).max(1_000).default(1),
});

const hashOnSchema = z
  .strictObject({
    /** Hash this request header (case-insensitive name). */
    header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'a header field name' }).optional(),
    /** Hash this cookie's value. */
    cookie: z.string().min(1).optional(),
    /** Hash the client's address. */
    clientAddress: z.literal(true).optional(),
  })
  .refine((h) => [h.header, h.cookie, h.clientAddress].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of header, cookie or clientAddress: true',
  });

export const healthCheckSchema = z.strictObject({
  /** Path of the HTTP GET health check, such as /healthz. */
  path: z.string().startsWith('/', { message: 'an origin-form path such as /healthz' }),
  /** Time between checks of one server (HAProxy `inter`). @default 2000 */
  intervalMs: ms(10).default(2_000),
  /** A check with no complete answer within this fails. @default 1000 */
  timeoutMs: ms(10).default(1_000),
  /** Consecutive failed checks that mark a server down (HAProxy `fall`). @default 3 */
  fall: count(1).default(3),
  /** Consecutive good checks that bring it back (HAProxy `rise`). @default 2 */
  rise: count(1).default(2),
  /** Status a healthy server answers; unset means any 2xx or 3xx (HAProxy's httpchk rule). */
  expectStatus: z.number().int().min(100).max(599).optional(),
});

export const passiveSchema = z.strictObject({
  /** Failures within failTimeoutMs that mark a server down. @default upstream.maxFails */
  maxFails: count(1).optional(),
  /** Window for maxFails, and how long a server is skipped after (when it has no active check). @default upstream.failTimeoutMs */
  failTimeoutMs: ms(100).optional(),
  /** Count 5xx answers as failures too (a burst of maxFails within failTimeoutMs marks the server down). @default false */
  on5xx: z.boolean().default(false),
});

/** Compressible by default: text and the structured text formats; images, video and archives are already compressed. */
export const DEFAULT_COMPRESSIBLE_TYPES = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/javascript',
  'application/xml',
  'application/*+xml',
  'application/x-ndjson',
  'image/svg+xml',
];

export const compressionSchema = z.strictObject({
  /** @default true */
  gzip: z.boolean().default(true),
  /** Brotli at quality 4 (Node's default 11 is far too slow on the fly). @default true */
  brotli: z.boolean().default(true),
  /** gzip level 1-9 (zlib's default 6; nginx's gzip_comp_level defaults to 1). @default 6 */
  gzipLevel: count(1).max(9).default(6),
  /** Brotli quality 0-11; about 4 is as fast as gzip and smaller. @default 4 */
  brotliQuality: count(0).max(11).default(4),
  /** Responses with a Content-Length below this are sent as they are. @default 1024 */
  minBytes: count(0).default(1_024),
  /** Media types to compress; `text/*` and `application/*+json` patterns allowed. */
  types: z.array(z.string().regex(/^[a-z0-9.+*-]+\/[a-z0-9.+*-]+$/, { message: 'a media type such as text/html' })).default(DEFAULT_COMPRESSIBLE_TYPES),
});

export const groupSchema = z.strictObject({
  servers: z.array(serverSchema).min(1, { message: 'at least one server' }),
  /** roundRobin (weighted), leastRequests (fewest outstanding, weighted) or hash (consistent, on hashOn). @default "roundRobin" */
  algorithm: z.enum(['roundRobin', 'leastRequests', 'hash']).default('roundRobin'),
  /** What `hash` hashes; required for it. */
  hashOn: hashOnSchema.optional(),
  /** A server that comes back up ramps from a small share to its full weight over this long; 0 = at once. @default 0 */
  slowStartMs: ms(0).default(0),
  /** Requests one server handles at once; more wait in the queue. 0 = upstream.maxConnectionsPerBackend. @default 0 */
  maxConcurrentPerServer: count(0).default(0),
  queue: z
    .strictObject({
      /** Requests waiting for a free server; beyond this, 503 at once. @default 1000 */
      maxLength: count(0).default(1_000),
      /** A request waits at most this long, then 503. @default 5000 */
      timeoutMs: ms(1).default(5_000),
    })
    .prefault({}),
  healthCheck: healthCheckSchema.optional(),
  passive: passiveSchema.prefault({}),
  /** Cookie stickiness, HAProxy's `insert indirect nocache`. */
  sticky: z
    .strictObject({
      /** Cookie name. */
      cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'a cookie name' }),
      /** Key of the HMAC that makes server ids; set the same one on every Holdfast process behind one address. */
      secret: z.string().min(8).optional(),
    })
    .optional(),
  /** On-the-fly compression; absent means off. */
  compression: compressionSchema.optional(),
});

/** In a list, `name` says which group it is; in a map the key does. */
const namedGroupSchema = groupSchema.extend({ name: z.string().min(1).optional() });

const routeSchema = z
  .strictObject({
    /** Exact host (`api.example.com`) or wildcard (`*.example.com`); absent matches any. */
    host: z
      .string()
      .regex(/^(\*\.)?[A-Za-z0-9.-]+$/, { message: 'a host name, or *.example.com' })
      .transform((h) => h.toLowerCase())
      .optional(),
    /** Matches this path and below it, on segment boundaries. @default "/" */
    pathPrefix: z.string().startsWith('/', { message: 'a path starting with /' }).default('/'),
    /** Name of a group. */
    group: z.string().min(1),
    /** Remove pathPrefix before forwarding. @default false */
    stripPrefix: z.boolean().default(false),
    /** Replace pathPrefix with this before forwarding. */
    replacePrefix: z.string().startsWith('/', { message: 'a path starting with /' }).optional(),
  })
  .refine((r) => !(r.stripPrefix && r.replacePrefix !== undefined), {
    message: 'stripPrefix and replacePrefix exclude each other',
  });

export type GroupConfig = z.infer<typeof groupSchema>;
export type HealthCheckConfig = z.infer<typeof healthCheckSchema>;
export type CompressionConfig = z.infer<typeof compressionSchema>;
export type RouteConfig = z.infer<typeof routeSchema>;

/** The group `backends: [...]` (and `--backend`) defines, with a catch-all route after the configured ones. */
export const DEFAULT_GROUP = 'default';

export const logSchema = z.strictObject({
  /** pino level. @default "info" */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON access line per request, and one per WebSocket when it ends. @default true */
  access: z.boolean().default(true),
  /**
   * Request paths (exact, without the query) left out of the access log: something polled every second,
   * such as a load balancer's health check. `holdfast demo` leaves out its page's own polling. @default []
   */
  accessExcludePaths: z.array(z.string().startsWith('/')).default([]),
});

export const gripSchema = z.strictObject({
  /** `iss` claim of the Grip-Sig JWT sent to backends. Pushpin's default. @default "pushpin" */
  sigIss: z.string().min(1).default('pushpin'),
  /**
   * Grip-Sig signing key: a secret (HS256) or a PEM private key (ES256 for EC, RS256 for RSA).
   * Pushpin's default; change it. @default "changeme"
   */
  sigKey: z.string().min(1).default('changeme'),
});

export const pushSchema = z.strictObject({
  /** Channels one held connection may subscribe to (Pushpin: 20). @default 20 */
  maxChannelsPerConnection: count(1).max(1000).default(20),
  /** Bytes queued for one held client before it is dropped as a slow consumer. @default 1048576 */
  maxQueuedBytesPerConnection: count(1024).default(1_048_576),
  /** Initial body a long-poll (response) hold may carry (Pushpin: 100 KB). @default 102400 */
  maxResponseHoldBodyBytes: count(0).default(102_400),
  /** Published items kept per channel for replay. @default 100 */
  historyMaxItems: count(0).default(100),
  /** How long a published item stays replayable. @default 300000 */
  historyMaxAgeMs: ms(1_000).default(300_000),
  /** An item whose prev-id is not the channel's last id waits this long for its predecessor (Pushpin: 5 s). @default 5000 */
  sequenceWaitMs: ms(0).default(5_000),
  /** Items that may wait for predecessors per channel (Pushpin: 100). @default 100 */
  sequenceMaxPending: count(1).default(100),
  /** A repeated item id within this window is dropped (Pushpin: 60 s). @default 60000 */
  dedupWindowMs: ms(0).default(60_000),
  /** Heartbeat for SSE holds when the backend sets no Grip-Keep-Alive; 0 disables. @default 25000 */
  sseHeartbeatMs: ms(0).default(25_000),
  /**
   * Sent to an SSE client whose Last-Event-ID is older than the history, so it knows it missed data.
   * `{channel}` and `{lastEventId}` are replaced. @default "event: holdfast-gap\ndata: {\"channel\":\"{channel}\",\"lastEventId\":\"{lastEventId}\"}\n\n"
   */
  sseGapEvent: z.string().default('event: holdfast-gap\ndata: {"channel":"{channel}","lastEventId":"{lastEventId}"}\n\n'),
  /**
   * Held clients a publish is written to per turn of the event loop; a larger fan-out continues after other
   * work (control requests, timers, other sockets) had its turn, in order. Smaller slices answer `/healthz`
   * sooner during a broadcast, larger ones cost a little less per delivery (bench/RESULTS.md). @default 1000
   */
  deliverSliceSize: count(1).default(1_000),
  /** Extension: `Grip-Channel: scores.*` subscribes to every channel under `scores.`. @default false */
  wildcardChannels: z.boolean().default(false),
});

export const publishSchema = z.strictObject({
  /** Largest publish request body. @default 4194304 */
  maxBodyBytes: count(1024).default(4_194_304),
  /** Largest single message (content or body of one format). @default 1048576 */
  maxMessageBytes: count(1).default(1_048_576),
  /**
   * When set, publishers must authenticate as js-grip does: `Bearer <key>`, a Bearer JWT signed with this key
   * (HS256, `iss` checked against `iss` when set), or Basic with this key as password. Required when the
   * control listener is not on loopback.
   */
  key: z.string().min(1).optional(),
  /** Expected `iss` of publish JWTs. */
  iss: z.string().min(1).optional(),
  /**
   * With `key` set, `/metrics` and `/healthz` need it too when the control listener is off loopback; true
   * leaves those two open (a load balancer's health check, a scraper on a private network). Publish and
   * reload always need the key. @default false
   */
  openReadEndpoints: z.boolean().default(false),
});

export const busSchema = z.strictObject({
  /**
   * What carries publishes between Holdfast processes: `memory` (one process; with `workers` above 1 the
   * workers share the primary's), `redis://host:port[/db]` (Pub/Sub for live items, Streams for history) or
   * `nats://host:port` (core NATS for live items, JetStream for history). @default "memory"
   */
  url: busUrl.default('memory'),
  /** Start of every key, channel and subject Holdfast makes in the engine, so several gateways can share one. @default "holdfast" */
  prefix: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -').default('holdfast'),
  /** How long start-up waits for the engine before it gives up with an error naming it. @default 10000 */
  connectTimeoutMs: ms(100).default(10_000),
  /**
   * How long a publish or a history read may wait on the engine; then the publish is a 503 and a replay
   * goes without history. A paused or unreachable engine is found this way. @default 2000
   */
  requestTimeoutMs: ms(50).default(2_000),
});

export const websocketSchema = z.strictObject({
  /**
   * `passthrough` tunnels the raw bytes to a backend that speaks WebSocket itself; `over-http` terminates the
   * WebSocket here and talks to the backend with WebSocket-over-HTTP POSTs (Pushpin's protocol).
   * @default "passthrough"
   */
  mode: z.enum(['passthrough', 'over-http']).default('passthrough'),
  /** Path prefixes served as WebSocket-over-HTTP whatever `mode` says (`/ws` matches `/ws` and `/ws/...`). @default [] */
  overHttpPaths: z.array(z.string().startsWith('/')).default([]),
  /** Terminated sockets: a ping after this long without one; 0 disables pings. @default 25000 */
  pingIntervalMs: ms(0).default(25_000),
  /** Terminated sockets: a peer that has not answered a ping within this is closed as dead. @default 10000 */
  pongTimeoutMs: ms(100).default(10_000),
  /** Passthrough tunnels: closed when no byte moved either way for this long; 0 disables. @default 300000 */
  tunnelIdleTimeoutMs: ms(0).default(300_000),
  /** Terminated sockets: a larger message from the client is refused with close code 1009. @default 1048576 */
  maxMessageBytes: count(1).default(1_048_576),
  /** Terminated sockets: bytes queued toward the client (or toward the backend) before the socket is closed with 1008. @default 1048576 */
  maxQueuedBytes: count(1024).default(1_048_576),
});

export const configSchema = z.strictObject({
  /** Client listener. @default "127.0.0.1:8080" */
  listen: hostPort.default('127.0.0.1:8080'),
  /** Control listener: metrics, health, publish. Never the client port. @default "127.0.0.1:5561" */
  control: hostPort.default('127.0.0.1:5561'),
  /** TLS: the TLS client listener and its certificates, and the CAs for https:// backends. */
  tls: tlsSchema.prefault({}),
  /** Backend origins, balanced round-robin: the shortcut for one group named "default" with a catch-all route. */
  backends: z.array(backendUrl).min(1, { message: 'at least one backend, such as http://127.0.0.1:3000' }).optional(),
  /** Backend groups, as a map by name or a list of groups with `name`. */
  groups: z
    // A list becomes a map keyed by index first, so a bad key's path (groups.0.servers) still finds its value
    // in the file. Not a union: zod reports a union that fails deeper down as one opaque issue.
    .preprocess(
      (groups) => (Array.isArray(groups) ? Object.fromEntries(groups.map((g: unknown, i) => [String(i), g])) : groups),
      z.record(z.string().min(1), namedGroupSchema),
    )
    .default({})
    .transform((groups, ctx): Record<string, GroupConfig> => {
      const byName: Record<string, GroupConfig> = {};
      for (const [key, { name, ...group }] of Object.entries(groups)) {
        const groupName = name ?? key;
        if (name === undefined && /^\d+$/.test(key)) {
          ctx.issues.push({ code: 'custom', path: [Number(key), 'name'], input: undefined, message: 'a group in a list needs a name' });
        }
        if (byName[groupName] !== undefined) {
          ctx.issues.push({ code: 'custom', path: [key, 'name'], input: name, message: `a second group named "${groupName}"` });
        }
        byName[groupName] = group;
      }
      return byName;
    }),
  /** Routes, matched most specific first (exact host, then wildcard, then any; longer path prefix first). */
  routes: z.array(routeSchema).default([]),
  limits: limitsSchema.prefault({}),
  timeouts: timeoutsSchema.prefault({}),
  upstream: upstreamSchema.prefault({}),
  log: logSchema.prefault({}),
  grip: gripSchema.prefault({}),
  push: pushSchema.prefault({}),
  publish: publishSchema.prefault({}),
  websocket: websocketSchema.prefault({}),
  bus: busSchema.prefault({}),
  /**
   * Processes serving the client and control ports (node:cluster): a number, or `auto` for one per core.
   * Each worker has its own file-descriptor limit, so this is how one machine holds more than one process
   * can. @default 1
   */
  workers: z.union([z.literal('auto'), count(1).max(256)]).default(1),
}).superRefine((config, ctx) => {
  checkGroupsAndRoutes(config, ctx);
  const control = parseHostPort(config.control);
  if (control !== null && !isLoopback(control.host) && config.publish.key === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['publish', 'key'],
      message: `required when the control listener (${config.control}) is not on loopback: anyone could publish`,
    });
  }
}).superRefine(checkRouteGroups, { when: () => true });

/**
 * A route naming an unknown group is an error naming it. Runs even when other keys are bad (so every issue
 * is listed at once), hence the defensive reading of a value that may be partly unparsed.
 */
function checkRouteGroups(config: unknown, ctx: z.core.$RefinementCtx<unknown>): void {
  const { backends, groups, routes } = config as { backends?: unknown; groups?: unknown; routes?: unknown };
  if (!Array.isArray(routes)) return;
  const names = new Set<string>();
  if (backends !== undefined) names.add(DEFAULT_GROUP);
  if (groups !== null && typeof groups === 'object') {
    for (const [key, group] of Object.entries(groups)) {
      const name = (group as { name?: unknown } | null)?.name;
      names.add(typeof name === 'string' ? name : key);
    }
  }
  for (const [i, route] of routes.entries()) {
    const group = (route as { group?: unknown } | null)?.group;
    if (typeof group !== 'string' || names.has(group)) continue;
    ctx.addIssue({
      code: 'custom',
      path: ['routes', i, 'group'],
      message: `unknown group "${group}"; groups: ${[...names].join(', ') || 'none'}`,
    });
  }
}

type RefineContext = z.core.$RefinementCtx<{
  backends?: string[] | undefined;
  groups: Record<string, GroupConfig>;
  routes: RouteConfig[];
}>;

function checkGroupsAndRoutes(
  config: { backends?: string[] | undefined; groups: Record<string, GroupConfig>; routes: RouteConfig[] },
  ctx: RefineContext,
): void {
  const names = new Set(Object.keys(config.groups));
  if (config.backends === undefined && names.size === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['backends'],
      message: 'at least one backend, such as http://127.0.0.1:3000 (or groups and routes)',
    });
    return;
  }
  if (config.backends !== undefined) {
    if (names.has(DEFAULT_GROUP)) {
      ctx.addIssue({ code: 'custom', path: ['groups', DEFAULT_GROUP], message: 'the name "default" is taken by backends' });
    }
    names.add(DEFAULT_GROUP);
  }
  for (const [name, group] of Object.entries(config.groups)) {
    if (group.algorithm === 'hash' && group.hashOn === undefined) {
      ctx.addIssue({ code: 'custom', path: ['groups', name, 'hashOn'], message: 'required by algorithm: hash' });
    }
    if (group.servers.every((s) => s.weight === 0)) {
      ctx.addIssue({ code: 'custom', path: ['groups', name, 'servers'], message: 'at least one server with a weight above 0' });
    }
  }
  if (config.backends === undefined && config.routes.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['routes'], message: 'at least one route, such as { group: NAME }' });
  }
}

/**
 * Only what surely binds to loopback: an IPv4 literal in 127.0.0.0/8, `::1`, or `localhost`. A name that
 * merely starts with "127." (127.evil.example) resolves wherever its owner likes.
 */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

export type HoldfastConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Keys we renamed or that users of other proxies reach for; the loader names the successor. */
export const RENAMED_KEYS: Readonly<Record<string, string>> = {
  backend: 'backends',
  upstreams: 'backends',
  maxConnections: 'limits.maxConnections',
  'limits.maxconn': 'limits.maxConnections',
  'timeouts.headersMs': 'timeouts.requestHeadMs',
  'timeouts.idleMs': 'timeouts.keepAliveIdleMs',
};
