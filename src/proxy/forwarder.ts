import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckedRequest } from '../http/request-checks.js';
import type { SendStallWatch } from '../http/send-stall.js';
import { E, HoldfastError } from '../errors.js';
import type { GripSigner } from '../grip/sig.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { ProxyExchange, kExchange, type ExchangeHost, type ExchangeOwner } from './exchange.js';
import type { GroupSender } from './group-sender.js';
import { rawHeaderValue } from '../http/headers.js';
import type { ResponseTakeover } from './response-takeover.js';
import type { Routing } from './routing.js';
import type { Backend } from './upstream.js';

/** What the forwarder is built from: what an exchange uses of it, and the routing. */
export type ForwarderDeps = Omit<ExchangeHost, 'admit'> & { readonly routing: Routing };

/** The backend side as the edge sees it: a way to start an exchange, and to route and admit it. */
export class Forwarder implements ExchangeHost {
  readonly routing: Routing;
  readonly sender: GroupSender;
  readonly signer: GripSigner;
  readonly takeover: ResponseTakeover;
  readonly sendStall: SendStallWatch;
  readonly metrics: Metrics;
  readonly log: Logger;

  constructor(deps: ForwarderDeps) {
    this.routing = deps.routing;
    this.sender = deps.sender;
    this.signer = deps.signer;
    this.takeover = deps.takeover;
    this.sendStall = deps.sendStall;
    this.metrics = deps.metrics;
    this.log = deps.log;
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

  /**
   * Route the exchange and place it in its group: a server to send to, null when it waits in the group's
   * queue, or the error to answer (404 without a route, 503 from the group).
   */
  admit(exchange: ProxyExchange): Backend | HoldfastError | null {
    const match = this.routing.route(rawHeaderValue(exchange.req.rawHeaders, 'host'), exchange.target);
    if (match === null) {
      return new HoldfastError(E.NO_ROUTE, `no route for ${exchange.method} ${exchange.target}`);
    }
    exchange.group = match.group;
    exchange.upstreamTarget = match.target;
    return this.sender.admit(match.group, exchange);
  }
}
