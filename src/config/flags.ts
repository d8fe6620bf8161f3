/**
 * The command-line flags and HOLDFAST_* environment variables that feed the config schema. One table, so
 * `--help`, the env names and the loader cannot drift apart.
 */
export type FlagKind = 'string' | 'int' | 'list' | 'boolean';

export interface FlagSpec {
  flag: string;
  /** Dotted path in the config schema. */
  path: string;
  kind: FlagKind;
  env: string;
  help: string;
  /** What a valid value is, for an error that names the flag: "--max-connections must be {expects}, got 'lots'". */
  expects: string;
}

function spec(flag: string, path: string, kind: FlagKind, help: string, expects: string): FlagSpec {
  return { flag, path, kind, env: `HOLDFAST_${flag.toUpperCase().replaceAll('-', '_')}`, help, expects };
}

// The bounds repeat schema.ts's; test/cli/flags.test.ts holds each one to what the schema accepts.
const atLeast = (min: number) => `a whole number ≥ ${min}`;
const msAtLeast = (min: number) => `a whole number of milliseconds ≥ ${min}`;

export const FLAGS: readonly FlagSpec[] = [
  spec('listen', 'listen', 'string', 'client listener, host:port (default 127.0.0.1:8080)', 'host:port, such as 127.0.0.1:8080 or 0.0.0.0:8080'),
  spec('backend', 'backends', 'list', 'backend origin, repeatable (env: comma separated)', 'an http:// or https:// origin such as http://127.0.0.1:3000'),
  spec('tls-listen', 'tls.listen', 'string', 'TLS client listener, host:port (needs --tls-cert and --tls-key)', 'host:port, such as 0.0.0.0:8443'),
  spec('tls-cert', 'tls.cert', 'string', 'PEM certificate file for the TLS listener (more in the config file: tls.certificates)', 'a PEM certificate file'),
  spec('tls-key', 'tls.key', 'string', 'PEM private key file of --tls-cert', 'a PEM private key file'),
  spec('h2c', 'h2c', 'boolean', 'the plain listener also takes HTTP/2 with prior knowledge (behind a TLS terminator)', 'true or false'),
  spec('control', 'control', 'string', 'control listener for /metrics, /healthz, /publish (default 127.0.0.1:5561)', 'host:port, such as 127.0.0.1:5561'),
  spec('max-connections', 'limits.maxConnections', 'int', 'client connections at once (default 10000)', atLeast(1)),
  spec('max-connections-per-client', 'limits.maxConnectionsPerClient', 'int', 'per client address (default 1000)', atLeast(1)),
  spec('max-concurrent-streams', 'limits.maxConcurrentStreams', 'int', 'HTTP/2 streams open at once on one connection (default 128)', atLeast(1)),
  spec('max-requests-per-connection', 'limits.maxRequestsPerConnection', 'int', '0 = no cap (default 1000)', atLeast(0)),
  spec('request-head-timeout', 'timeouts.requestHeadMs', 'int', 'ms for the whole request head (default 10000)', msAtLeast(100)),
  spec('keep-alive-timeout', 'timeouts.keepAliveIdleMs', 'int', 'ms an idle client connection is kept (default 15000)', msAtLeast(100)),
  spec('upstream-timeout', 'timeouts.upstreamResponseMs', 'int', 'ms to wait for a backend response head (default 60000)', msAtLeast(10)),
  spec('drain-timeout', 'timeouts.drainMs', 'int', 'ms in-flight requests get on shutdown (default 15000)', msAtLeast(0)),
  spec('bus', 'bus.url', 'string', 'memory | redis://host:port[/db] | nats://host:port (default memory)', 'memory, redis://host:port[/db] or nats://host:port'),
  spec('workers', 'workers', 'int', 'processes sharing the ports, a number or auto = one per core (default 1)', 'a whole number from 1 to 256, or auto'),
  spec('log-level', 'log.level', 'string', 'fatal|error|warn|info|debug|trace|silent (default info)', 'one of fatal, error, warn, info, debug, trace, silent'),
];

/** Turns a flag or env string into the kind the schema expects; a bad number stays a string so the schema names it. */
export function convertFlagValue(kind: FlagKind, raw: string | string[]): unknown {
  const values = Array.isArray(raw) ? raw : [raw];
  switch (kind) {
    case 'list':
      return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
    case 'int': {
      const text = values[values.length - 1] ?? '';
      return /^-?\d+$/.test(text.trim()) ? Number(text) : text;
    }
    case 'boolean': {
      const text = (values[values.length - 1] ?? '').toLowerCase();
      return text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : text;
    }
    case 'string':
      return values[values.length - 1];
  }
}

/** Which HTTP/1 server the edge runs (`llhttp`, the default, or `node-http`): a diagnostic switch, not a setting. */
export const HTTP1_ENGINE_ENV = 'HOLDFAST_HTTP1_ENGINE';
export const HTTP1_ENGINES = ['llhttp', 'node-http'] as const;

/** HOLDFAST_* variables that are not a FLAGS entry, with what reads them (for --help and the unknown-variable check). */
export const OTHER_ENV: readonly { env: string; help: string }[] = [
  { env: 'HOLDFAST_CONFIG', help: 'the config file, as --config' },
  { env: 'HOLDFAST_PUBLISH_KEY', help: 'holdfast publish: the key it sends (publish.key on the server), as --key' },
  { env: HTTP1_ENGINE_ENV, help: "node-http: serve HTTP/1 with Node's own server, not Holdfast's llhttp engine (diagnostics)" },
];

/** How `holdfast demo --workers N` hands the primary's demo backend to its workers: set by Holdfast, not a setting. */
export const DEMO_BACKEND_ENV = 'HOLDFAST_INTERNAL_DEMO_BACKEND';

/** Every HOLDFAST_* variable Holdfast reads. */
export const KNOWN_ENV: readonly string[] = [...FLAGS.map((f) => f.env), ...OTHER_ENV.map((e) => e.env), DEMO_BACKEND_ENV];
