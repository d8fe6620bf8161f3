import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus } from '../bus/bus.js';
import type { HoldfastConfig } from '../config/schema.js';
import type { HoldfastError } from '../errors.js';
import { PublishError, parsePublishBody, type PublishItem } from '../grip/publish-items.js';
import { Sequencer } from '../grip/sequencer.js';
import type { HoldManager } from '../hold/hold-manager.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { PublishAuth } from './publish-auth.js';

export interface PublishDeps {
  config: HoldfastConfig;
  bus: Bus;
  holds: HoldManager;
  metrics: Metrics;
  log: Logger;
}

/**
 * Pushpin's publish endpoint: `POST /publish` with `{"items": [...]}`. Answers `200 Published` as Pushpin
 * does (JSON when asked), plus `x-holdfast-delivered`, the subscribers on this node that got the items.
 */
export class PublishEndpoint {
  readonly #deps: PublishDeps;
  readonly #auth: PublishAuth | null;
  readonly #sequencer: Sequencer;
  #pendingDeliveries: Promise<number>[] = [];

  constructor(deps: PublishDeps) {
    this.#deps = deps;
    const { publish, push } = deps.config;
    this.#auth = publish.key === undefined ? null : new PublishAuth(publish.key, publish.iss);
    this.#sequencer = new Sequencer(
      { waitMs: push.sequenceWaitMs, maxPendingPerChannel: push.sequenceMaxPending, dedupWindowMs: push.dedupWindowMs },
      {
        lastId: (channel) => deps.bus.lastId(channel),
        emit: (item) => {
          this.#pendingDeliveries.push(deps.bus.publish(item));
        },
        drop: (_item, reason) => deps.metrics.drops.inc({ reason }),
      },
    );
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' });
      res.end('Method Not Allowed: publish with POST\n');
      return;
    }
    if (this.#auth !== null && !(await this.#auth.verify(req.headers.authorization))) {
      return this.#refuse(req, res, new PublishError('HF_ERR_PUBLISH_UNAUTHORIZED', 401, 'missing or invalid Authorization'), {
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
    const delivered = await this.publish(items);
    const json = (req.headers.accept ?? '').includes('application/json');
    res.writeHead(200, {
      'content-type': json ? 'application/json' : 'text/plain',
      'x-holdfast-delivered': String(delivered),
    });
    res.end(json ? `${JSON.stringify({ message: 'Published', delivered })}\n` : 'Published\n');
  }

  /** Sequences and publishes items; resolves to deliveries on this node. Also used by the CLI demo. */
  async publish(items: readonly PublishItem[]): Promise<number> {
    const { holds, metrics } = this.#deps;
    // Several items: one write per client for all of them. One item: corking would only add work.
    const batch = items.length > 1;
    if (batch) holds.beginBatch();
    const now = Date.now();
    try {
      for (const item of items) {
        metrics.published.inc();
        this.#sequencer.add(item, now);
      }
    } finally {
      if (batch) holds.endBatch();
    }
    const deliveries = this.#pendingDeliveries;
    this.#pendingDeliveries = [];
    const counts = await Promise.all(deliveries);
    return counts.reduce((a, b) => a + b, 0);
  }

  close(): void {
    this.#sequencer.stop();
  }

  #refuse(req: IncomingMessage, res: ServerResponse, err: HoldfastError, extra: Record<string, string> = {}): void {
    this.#deps.log.info({ code: err.code }, `publish refused: ${err.message}`);
    const json = (req.headers.accept ?? '').includes('application/json');
    res.writeHead(err.httpStatus, {
      'content-type': json ? 'application/json' : 'text/plain',
      'x-holdfast-error': err.code,
      ...extra,
    });
    res.end(json ? `${JSON.stringify({ error: err.code, message: err.message })}\n` : `${err.message}\n`);
    // An oversized body may still be arriving: do not read it, close after answering.
    if (!req.complete) res.on('finish', () => req.socket.destroy());
  }
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
        req.pause();
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
  return new PublishError('HF_ERR_PUBLISH_TOO_LARGE', 413, `publish body exceeds publish.maxBodyBytes (${maxBytes} bytes)`);
}
