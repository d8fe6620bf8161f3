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
}

function spec(flag: string, path: string, kind: FlagKind, help: string): FlagSpec {
  return { flag, path, kind, env: `HOLDFAST_${flag.toUpperCase().replaceAll('-', '_')}`, help };
}

export const FLAGS: readonly FlagSpec[] = [
  spec('listen', 'listen', 'string', 'client listener, host:port (default 127.0.0.1:8080)'),
  spec('backend', 'backends', 'list', 'backend origin, repeatable (env: comma separated)'),
  spec('tls-listen', 'tls.listen', 'string', 'TLS client listener, host:port (needs --tls-cert and --tls-key)'),
  spec('tls-cert', 'tls.cert', 'string', 'PEM certificate file for the TLS listener (more in the config file: tls.certificates)'),
  spec('tls-key', 'tls.key', 'string', 'PEM private key file of --tls-cert'),
  spec('control', 'control', 'string', 'control listener for /metrics, /healthz (default 127.0.0.1:5561)'),
  spec('max-connections', 'limits.maxConnections', 'int', 'client connections at once (default 10000)'),
  spec('max-connections-per-client', 'limits.maxConnectionsPerClient', 'int', 'per client address (default 1000)'),
  spec('max-requests-per-connection', 'limits.maxRequestsPerConnection', 'int', '0 = no cap (default 1000)'),
  spec('request-head-timeout', 'timeouts.requestHeadMs', 'int', 'ms for the whole request head (default 10000)'),
  spec('keep-alive-timeout', 'timeouts.keepAliveIdleMs', 'int', 'ms an idle client connection is kept (default 15000)'),
  spec('upstream-timeout', 'timeouts.upstreamResponseMs', 'int', 'ms to wait for a backend response head (default 60000)'),
  spec('drain-timeout', 'timeouts.drainMs', 'int', 'ms in-flight requests get on shutdown (default 15000)'),
  spec('bus', 'bus.url', 'string', 'memory | redis://host:port[/db] | nats://host:port (default memory)'),
  spec('workers', 'workers', 'int', 'processes sharing the ports, a number or auto = one per core (default 1)'),
  spec('log-level', 'log.level', 'string', 'fatal|error|warn|info|debug|trace|silent (default info)'),
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
