/**
 * What `holdfast probe URL` talks to, and the exact request bytes it sends: every check writes its own
 * requests on raw sockets, so what the server saw is never in doubt (no client library adds or pools anything).
 */
export interface ProbeTarget {
  /** The URL as given, normalised by WHATWG URL. */
  url: string;
  scheme: 'http' | 'https' | 'ws' | 'wss';
  host: string;
  port: number;
  /** Origin-form request target: path and query. */
  path: string;
  /** The Host header: host[:port] as in the URL. */
  hostHeader: string;
  tls: boolean;
}

const DEFAULT_PORTS = { 'http:': 80, 'https:': 443, 'ws:': 80, 'wss:': 443 } as const;

/** A URL the probe cannot use: a usage error, not a finding. */
export class ProbeUsageError extends Error {}

/** Throws ProbeUsageError with a one-line message for anything but an http(s) or ws(s) URL. */
export function parseTarget(input: string): ProbeTarget {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ProbeUsageError(`not a URL: "${input}" (expected http://host:port/path or ws://host:port/path)`);
  }
  const protocol = url.protocol as keyof typeof DEFAULT_PORTS;
  if (!(protocol in DEFAULT_PORTS)) throw new ProbeUsageError(`unsupported scheme "${url.protocol}" (http, https, ws or wss)`);
  const scheme = protocol.slice(0, -1) as ProbeTarget['scheme'];
  // URL keeps the brackets of an IPv6 literal in hostname; net.connect wants it bare.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    url: url.href,
    scheme,
    host,
    port: url.port === '' ? DEFAULT_PORTS[protocol] : Number(url.port),
    path: `${url.pathname}${url.search}`,
    hostHeader: url.host,
    tls: scheme === 'https' || scheme === 'wss',
  };
}

/** The same server and path as a WebSocket URL (for --ws on an http URL). */
export function webSocketUrl(target: ProbeTarget): string {
  if (target.scheme === 'ws' || target.scheme === 'wss') return target.url;
  const url = new URL(target.url);
  url.protocol = target.tls ? 'wss:' : 'ws:';
  return url.href;
}

/** The path with one more query parameter, for requests a check must tell apart in the answers. */
export function pathWithMarker(path: string, marker: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}holdfast-probe=${marker}`;
}

export interface RequestOptions {
  version?: '1.0' | '1.1';
  /** The Connection header, when one is sent. */
  connection?: 'close' | 'keep-alive';
  path?: string;
  headers?: Record<string, string>;
}

export const PROBE_USER_AGENT = 'holdfast-probe';

/** What an EventSource sends (WHATWG HTML §9.2): some servers (nchan) stream only to a request that says it. */
export const SSE_REQUEST_HEADERS = { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' };

/** A bodiless GET as bytes. */
export function getRequest(target: ProbeTarget, options: RequestOptions = {}): string {
  const lines = [
    `GET ${options.path ?? target.path} HTTP/${options.version ?? '1.1'}`,
    `Host: ${target.hostHeader}`,
    `User-Agent: ${PROBE_USER_AGENT}`,
  ];
  if (options.connection !== undefined) lines.push(`Connection: ${options.connection}`);
  // Accept is */* unless the check names its own (SSE asks for text/event-stream).
  for (const [name, value] of Object.entries({ Accept: '*/*', ...options.headers })) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
