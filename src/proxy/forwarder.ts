import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckedRequest } from '../edge/request-checks.js';
import type { HoldfastConfig } from '../config/schema.js';
import type { GripSigner } from '../grip/sig.js';
import type { HoldManager } from '../hold/hold-manager.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { RoundRobinBalancer } from './balancer.js';
import { ProxyExchange, kExchange, type ExchangeOwner } from './exchange.js';
import { Backend } from './upstream.js';

/** The backend side as the edge sees it: a set of pooled backends and a way to start an exchange. */
export class Forwarder {
  readonly backends: readonly Backend[];
  readonly balancer: RoundRobinBalancer;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly retries: number;
  /** Signs every backend request (Grip-Sig); null only in tests of the bare proxy. */
  gripSigner: GripSigner | null = null;
  /** The push gateway, given GRIP responses to hold. */
  holds: HoldManager | null = null;

  constructor(config: HoldfastConfig, metrics: Metrics, log: Logger) {
    this.metrics = metrics;
    this.log = log;
    this.retries = config.upstream.retries;
    this.backends = config.backends.map((origin) => new Backend(origin, { config, metrics, log }));
    this.balancer = new RoundRobinBalancer(this.backends);
  }

  createExchange(
    req: IncomingMessage,
    res: ServerResponse,
    owner: ExchangeOwner,
    request: CheckedRequest,
    expectsContinue: boolean,
  ): ProxyExchange {
    const exchange = new ProxyExchange(req, res, owner, this, request, expectsContinue);
    (res as ServerResponse & { [kExchange]?: ProxyExchange })[kExchange] = exchange;
    return exchange;
  }

  /** For errors about the group as a whole. */
  describe(): string {
    return this.backends.length === 1 ? this.backends[0]!.name : `group [${this.backends.map((b) => b.name).join(', ')}]`;
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close()));
  }

  async destroy(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.destroy()));
  }
}
