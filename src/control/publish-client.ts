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
  const response = await fetch(new URL('/publish/', options.controlUrl), {
    method: 'POST',
    headers,
    body: JSON.stringify({ items: [publishItemFor(options)] }),
  });
  const body = await response.text();
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
