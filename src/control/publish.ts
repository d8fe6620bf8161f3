import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus, PublishResult } from '../bus/bus.js';
import type { HoldfastConfig } from '../config/schema.js';
import { lingerOnClose } from '../http/linger.js';
import { sendControlErrorResponse } from '../http/error-response.js';
import { BusUnavailableError, E, HoldfastError } from '../errors.js';
import { PublishError, parsePublishBody, type PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import type { PublishAuth } from './publish-auth.js';

/** As the client side's: long enough for a publisher on any network to read its answer. */
const LINGER_MS = 2_000;

export interface PublishDeps {
  config: HoldfastConfig;
  bus: Bus;
  /** The publish key's check (publish.key), shared with the control listener's other endpoints; null when unset. */
  auth: PublishAuth | null;
  metrics: Metrics;
  log: Logger;
}

/**
 * Pushpin's publish endpoint: `POST /publish` with `{"items": [...]}`. Answers `200 Published` as Pushpin
 * does (JSON when asked), plus what Holdfast knows of the outcome:
 * - `x-holdfast-delivered`: held connections on this node the items reached (a process, or with workers and
 *   `bus: memory` every worker of the machine);
 * - `x-holdfast-nodes`: other nodes the engine handed the items to, where the engine says (Redis);
 * - `x-holdfast-duplicates`, `x-holdfast-queued`, `x-holdfast-dropped`: items not sent now, and why.
 * Order, de-duplication and history belong to the bus; a bus that cannot take the items is a 503.
 */
export class PublishEndpoint {
  readonly #deps: PublishDeps;

  constructor(deps: PublishDeps) {
    this.#deps = deps;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      return sendControlErrorResponse(res, PUBLISH_WITH_POST, { allow: 'POST' });
    }
    if (this.#deps.auth !== null && !(await this.#deps.auth.verify(req.headers.authorization))) {
      return this.#refuse(req, res, new PublishError(E.PUBLISH_UNAUTHORIZED, 'missing or invalid Authorization'), {
        'www-authenticate': 'Bearer',
      });
    }
    let text: string;
    try {
      text = await readBody(req, this.#deps.config.publish.maxBodyBytes);
    } catch (err) {
      if (err instanceof PublishError) return this.#refuse(req, res, err);
      throw err;
    }
    let items: PublishItem[];
    try {
      items = parsePublishBody(text, { maxMessageBytes: this.#deps.config.publish.maxMessageBytes });
    } catch (err) {
      if (err instanceof PublishError) return this.#refuse(req, res, err);
      throw err;
    }
    let result: PublishResult;
    try {
      result = await this.publish(items);
    } catch (err) {
      if (err instanceof BusUnavailableError) return this.#refuse(req, res, err);
      throw err;
    }
    const json = (req.headers.accept ?? '').includes('application/json');
    const headers: Record<string, string> = {
      'content-type': json ? 'application/json' : 'text/plain',
      'x-holdfast-delivered': String(result.delivered),
    };
    if (result.remoteNodes !== undefined) headers['x-holdfast-nodes'] = String(result.remoteNodes);
    // `delivered` is then a lower bound: say so rather than answer a count that looks final.
    if ((result.unreportedWorkers ?? 0) > 0) headers['x-holdfast-delivered-incomplete'] = String(result.unreportedWorkers);
    const counts = countStatuses(result);
    if (counts.duplicate > 0) headers['x-holdfast-duplicates'] = String(counts.duplicate);
    if (counts.queued > 0) headers['x-holdfast-queued'] = String(counts.queued);
    if (counts.dropped > 0) headers['x-holdfast-dropped'] = String(counts.dropped);
    res.writeHead(200, headers);
    if (!json) {
      res.end('Published\n');
      return;
    }
    const body = {
      message: 'Published',
      delivered: result.delivered,
      ...(result.remoteNodes === undefined ? {} : { nodes: result.remoteNodes }),
      items: result.statuses.map((status) => ({ status })),
    };
    res.end(`${JSON.stringify(body)}\n`);
  }

  /** Publishes items through the bus (which sequences and de-duplicates them). Also used by the CLI demo. */
  publish(items: readonly PublishItem[]): Promise<PublishResult> {
    this.#deps.metrics.published.inc(items.length);
    return this.#deps.bus.publish(items);
  }

  #refuse(req: IncomingMessage, res: ServerResponse, err: HoldfastError, extra: Record<string, string> = {}): void {
    this.#deps.metrics.publishRefused.inc({ code: err.code });
    this.#deps.log.info({ code: err.code }, `publish refused: ${err.message}`);
    // An oversized body may still be arriving: answer now, close after, and meanwhile read and discard what
    // comes for up to LINGER_MS. A close with unread input is a reset, and a publisher still writing (curl
    // reads only after its upload) would never see the 413.
    if (!req.complete) {
      res.shouldKeepAlive = false;
      lingerOnClose(req.socket, LINGER_MS, true);
      req.resume();
    }
    sendControlErrorResponse(res, err, extra);
  }
}

const PUBLISH_WITH_POST = new HoldfastError(E.CONTROL_METHOD_NOT_ALLOWED, 'Method Not Allowed: publish with POST');

function countStatuses(result: PublishResult): Record<'duplicate' | 'queued' | 'dropped', number> {
  const counts = { duplicate: 0, queued: 0, dropped: 0 };
  for (const status of result.statuses) if (status !== 'published') counts[status]++;
  return counts;
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size).toString('utf8')));
    req.once('error', reject);
  });
}

function tooLarge(maxBytes: number): PublishError {
  return new PublishError(E.PUBLISH_TOO_LARGE, `publish body exceeds publish.maxBodyBytes (${maxBytes} bytes)`);
}
