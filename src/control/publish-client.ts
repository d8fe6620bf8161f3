import { ControlUnreachableError, errorDefOf, NotControlListenerError } from '../errors.js';

/** A control listener answers within this or is reported unreachable (a black-holed address would hang fetch). */
const ANSWER_TIMEOUT_MS = 10_000;

/**
 * The smallest publisher: one message to one channel in every format, for `holdfast publish` and the demo.
 * Backends should use a GRIP library (@fanoutio/grip and its siblings); this exists so the CLI needs none.
 */
export interface PublishMessageOptions {
  /** Control listener base URL, e.g. http://127.0.0.1:5561. */
  controlUrl: string;
  channel: string;
  message: string;
  id?: string | undefined;
  /** SSE event name; `message` when unset. */
  event?: string | undefined;
  /** publish.key, sent as a Bearer token. */
  key?: string | undefined;
}

export interface PublishOutcome {
  status: number;
  /** Held connections on the node (machine, with workers) that took the publish. */
  delivered: number;
  /** Other nodes the bus handed the item to, when the bus knows (Redis). */
  nodes: number | undefined;
  /** The item's fate when the answer came from Holdfast: published, queued, duplicate or dropped. */
  itemStatus: string | undefined;
  body: string;
}

export function publishItemFor(options: Omit<PublishMessageOptions, 'controlUrl' | 'key'>): Record<string, unknown> {
  const data = options.message
    .split('\n')
    .map((line) => `data: ${line}`)
    .join('\n');
  const event = options.event === undefined || options.event === 'message' ? '' : `event: ${options.event}\n`;
  return {
    channel: options.channel,
    ...(options.id === undefined ? {} : { id: options.id }),
    formats: {
      'http-stream': { content: `${event}${data}\n\n` },
      'http-response': { body: `${options.message}\n` },
      'ws-message': { content: options.message },
    },
  };
}

export async function publishMessage(options: PublishMessageOptions): Promise<PublishOutcome> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  const address = new URL(options.controlUrl).host;
  let response: Response;
  let body: string;
  try {
    response = await fetch(new URL('/publish/', options.controlUrl), {
      method: 'POST',
      headers,
      body: JSON.stringify({ items: [publishItemFor(options)] }),
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    body = await response.text();
  } catch (err) {
    throw transportError(address, err);
  }
  const errorCode = response.headers.get('x-holdfast-error');
  const fromControl = response.status === 200 ? response.headers.has('x-holdfast-delivered') : errorCode !== null && isControlCode(errorCode);
  if (!fromControl) throw new NotControlListenerError(address, describeAnswer(response, body, errorCode));
  const nodes = response.headers.get('x-holdfast-nodes');
  return {
    status: response.status,
    delivered: Number(response.headers.get('x-holdfast-delivered') ?? '0'),
    nodes: nodes === null ? undefined : Number(nodes),
    itemStatus: response.status === 200 ? itemStatusOf(body) : undefined,
    body,
  };
}

function itemStatusOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { items?: { status?: unknown }[] };
    const status = parsed.items?.[0]?.status;
    return typeof status === 'string' ? status : undefined;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** fetch's "fetch failed" hides the reason in `cause` (undici): bring out the errno and the address it tried. */
function transportError(address: string, err: unknown): Error {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new ControlUnreachableError(address, `no answer within ${ANSWER_TIMEOUT_MS / 1000} s`, err);
  }
  const cause = (err as { cause?: { code?: string; message?: string; address?: string; port?: number } }).cause;
  const code = cause?.code;
  // The Fetch standard's "bad ports" (1, 6000, 6665-6669, ...) are refused before any connection is tried.
  if (cause?.message === 'bad port') return new ControlUnreachableError(address, 'fetch refuses this port (a "bad port" in the Fetch standard); use another', err);
  const where = cause?.address === undefined ? address : `${cause.address}:${cause.port ?? ''}`;
  switch (code) {
    case 'ECONNREFUSED':
      return new ControlUnreachableError(address, `ECONNREFUSED ${where} (nothing listens there)`, err);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ControlUnreachableError(address, `${code}: the host name does not resolve`, err);
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ControlUnreachableError(address, `${code} ${where} (no answer to the connection attempt)`, err);
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
      return new NotControlListenerError(address, 'the answer is not HTTP');
    default:
      return new ControlUnreachableError(address, [code, cause?.message ?? (err as Error).message].filter(Boolean).join(' '), err);
  }
}

/** One line on what answered instead: status, type, a Holdfast code from its client listener, the start of the body. */
function describeAnswer(response: Response, body: string, errorCode: string | null): string {
  const type = (response.headers.get('content-type') ?? 'no content-type').split(';')[0]!;
  if (errorCode !== null) return `HTTP ${response.status} ${errorCode}, an answer of Holdfast's client listener (--listen), not its control one`;
  const title = type === 'text/html' ? /<title[^>]*>([^<]*)<\/title>/i.exec(body)?.[1]?.trim() : undefined;
  if (title) return `HTTP ${response.status} ${type}, a page titled "${title.slice(0, 80)}"`;
  const text = body.replace(/\s+/g, ' ').trim();
  const start = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return `HTTP ${response.status} ${type}${start === '' ? '' : `: ${start}`}`;
}

/** Codes only the control listener answers with; the client listener's own (no route, upstream errors) mean a wrong port. */
function isControlCode(code: string): boolean {
  return errorDefOf(code)?.listener === 'control';
}
