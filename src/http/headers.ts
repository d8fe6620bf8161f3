/**
 * Header hygiene between client and backend, both ways. RFC 9110 §7.6.1: a proxy removes the hop-by-hop
 * fields and every field named in `Connection`. Works on Node's flat `rawHeaders` arrays (name, value, ...)
 * because building `req.headers` objects costs more than the whole filter.
 */

/** Fields that describe one connection, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Lower-cased tokens of every Connection field, minus the ones that only carry persistence. */
export function connectionTokens(rawHeaders: readonly string[]): Set<string> | null {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    tokens = addConnectionTokens(tokens, rawHeaders[i + 1]!);
  }
  return tokens;
}

/**
 * Fields a `Connection` list cannot remove: Host (the gateway routes on it and the backend needs it; a
 * client writing `Connection: close, Host` made the backend see our own address) and Content-Length (framing
 * the proxy checks and rewrites itself). HAProxy and nginx keep both whatever Connection names.
 */
const END_TO_END = new Set(['host', 'content-length']);

function addConnectionTokens(tokens: Set<string> | null, value: string): Set<string> | null {
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive' || END_TO_END.has(t)) continue;
    (tokens ??= new Set()).add(t);
  }
  return tokens;
}

export interface ForwardContext {
  clientAddress: string;
  /** `1.1` or `1.0`, for Via. */
  httpVersion: string;
  proto: 'http' | 'https';
}

/** The scheme the client used: `https` on a connection the TLS listener accepted. */
export function clientProto(socket: object): 'http' | 'https' {
  return (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}

const VIA_PRODUCT = 'holdfast';

/**
 * The header list sent to a backend: the client's fields minus hop-by-hop, `Expect` (what goes up is the
 * edge's decision: only a 100-continue it accepted, added by unpooled-request.ts) and client-sent `Grip-*` (a
 * client must never forge instructions or signatures), plus X-Forwarded-For (appended), X-Forwarded-Proto and
 * X-Forwarded-Host (replaced) and Via (appended).
 */
export function upstreamRequestHeaders(rawHeaders: readonly string[], ctx: ForwardContext): string[] {
  const named = connectionTokens(rawHeaders);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let via: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
    switch (lower) {
      case 'host':
        host = value;
        out.push(name, value);
        continue;
      case 'x-forwarded-for':
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      case 'via':
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
      case 'expect':
        continue;
    }
    if (lower.startsWith('grip-')) continue;
    out.push(name, value);
  }
  const viaEntry = `${ctx.httpVersion} ${VIA_PRODUCT}`;
  out.push(
    'x-forwarded-for',
    forwardedFor === undefined ? ctx.clientAddress : `${forwardedFor}, ${ctx.clientAddress}`,
    'x-forwarded-proto',
    ctx.proto,
    'via',
    via === undefined ? viaEntry : `${via}, ${viaEntry}`,
  );
  if (host !== undefined) out.push('x-forwarded-host', host);
  return out;
}

/** The backend's response fields as strings, minus hop-by-hop and Connection-named ones. */
export function clientResponseHeaders(rawHeaders: readonly Buffer[]): string[] {
  const out: string[] = [];
  let named: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') named = addConnectionTokens(named, rawHeaders[i + 1]!.toString('latin1'));
      continue;
    }
    out.push(name, rawHeaders[i + 1]!.toString('latin1'));
  }
  // Rare: a backend naming extra hop-by-hop fields. Filtered afterwards so the common path stays one loop.
  if (named === null) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!named.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  }
  return kept;
}

/** What Node writes in a status line's reason phrase (and in a field value): HTAB, SP, VCHAR, obs-text. */
const UNWRITABLE_TEXT = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * RFC 9112 §4: the reason phrase is informational, and a client should ignore it. A backend's phrase carrying a
 * control byte would make Node refuse the whole status line (the client got a cut connection), so it is
 * replaced by Node's standard phrase, as nginx and HAProxy relay such answers.
 */
export function writableReason(reason: string): string {
  return isWritableText(reason) ? reason : '';
}

/** A reason phrase or field value Node can write as it is. */
export function isWritableText(text: string): boolean {
  return !UNWRITABLE_TEXT.test(text);
}

/** Case-insensitive lookup of the first value of `name` in a flat raw header list. */
export function rawHeaderValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.length === name.length && n.toLowerCase() === name) return rawHeaders[i + 1];
  }
  return undefined;
}

/** Every value of `name`, joined with ", " (RFC 9110 §5.3), or undefined when absent. */
export function rawHeaderValues(rawHeaders: readonly string[], name: string): string | undefined {
  let joined: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.length === name.length && n.toLowerCase() === name) {
      joined = joined === undefined ? rawHeaders[i + 1] : `${joined}, ${rawHeaders[i + 1]}`;
    }
  }
  return joined;
}

/** A response's Content-Length from a flat header list, when it has a valid one. */
export function declaredContentLength(headers: readonly string[]): number | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === 14 && headers[i]!.toLowerCase() === 'content-length') {
      const n = Number(headers[i + 1]);
      return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    }
  }
  return undefined;
}
