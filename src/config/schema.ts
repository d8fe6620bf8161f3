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
      return url.protocol === 'http:' && url.pathname === '/' && !url.search && !url.username;
    } catch {
      return false;
    }
  },
  { message: 'an http:// origin such as http://127.0.0.1:3000 (no path, query or credentials)' },
);

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

export const logSchema = z.strictObject({
  /** pino level. @default "info" */
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON access line per request. @default true */
  access: z.boolean().default(true),
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
});

export const configSchema = z.strictObject({
  /** Client listener. @default "127.0.0.1:8080" */
  listen: hostPort.default('127.0.0.1:8080'),
  /** Control listener: metrics, health, publish. Never the client port. @default "127.0.0.1:5561" */
  control: hostPort.default('127.0.0.1:5561'),
  /** Backend origins, balanced round-robin. */
  backends: z.array(backendUrl).min(1, { message: 'at least one backend, such as http://127.0.0.1:3000' }),
  limits: limitsSchema.prefault({}),
  timeouts: timeoutsSchema.prefault({}),
  upstream: upstreamSchema.prefault({}),
  log: logSchema.prefault({}),
  grip: gripSchema.prefault({}),
  push: pushSchema.prefault({}),
  publish: publishSchema.prefault({}),
}).superRefine((config, ctx) => {
  const control = parseHostPort(config.control);
  if (control !== null && !isLoopback(control.host) && config.publish.key === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['publish', 'key'],
      message: `required when the control listener (${config.control}) is not on loopback: anyone could publish`,
    });
  }
});

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
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
