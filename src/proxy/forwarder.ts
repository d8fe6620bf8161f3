import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CheckedRequest } from '../edge/request-checks.js';
import { DEFAULT_GROUP, groupSchema, type GroupConfig, type HoldfastConfig } from '../config/schema.js';
import { HoldfastError } from '../errors.js';
import type { GripSigner } from '../grip/sig.js';
import type { HoldManager } from '../hold/hold-manager.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { ProxyExchange, kExchange, type ExchangeOwner } from './exchange.js';
import { BackendGroup } from './group.js';
import { rawHeaderValue } from './headers.js';
import { RouteTable, compileRoute, routeConfigs } from './routes.js';
import type { Backend } from './upstream.js';

/** One configuration's groups and routes; swapped whole on reload. */
interface Routing {
  readonly config: HoldfastConfig;
  readonly groups: ReadonlyMap<string, BackendGroup>;
  readonly table: RouteTable<BackendGroup>;
  /** Where GRIP link fetches go (they carry no route): the catch-all route's group, else the first route's. */
  readonly primary: BackendGroup;
}

/**
 * The backend side as the edge sees it: the route table and backend groups of the current configuration,
 * and a way to start an exchange. A request is routed when it starts (pipeline order), so after a reload
 * new requests use the new groups while admitted ones finish on the old, which close once idle.
 */
export class Forwarder {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Signs every backend request (Grip-Sig); null only in tests of the bare proxy. */
  gripSigner: GripSigner | null = null;
  /** The push gateway, given GRIP responses to hold. */
  holds: HoldManager | null = null;
  /** Sticky ids of groups without their own secret: random per process, kept across reloads. */
  readonly #stickyKey = randomBytes(32);
  #routing: Routing;
  readonly #retired = new Set<BackendGroup>();

  constructor(config: HoldfastConfig, metrics: Metrics, log: Logger) {
    this.metrics = metrics;
    this.log = log;
    this.#routing = this.#build(config);
  }

  get retries(): number {
    return this.#routing.config.upstream.retries;
  }

  get groups(): ReadonlyMap<string, BackendGroup> {
    return this.#routing.groups;
  }

  /** The current groups and the retired ones still finishing what they admitted before a reload. */
  liveGroups(): BackendGroup[] {
    return [...this.#routing.groups.values(), ...this.#retired];
  }

  /** The group and upstream target for a Host and a checked target, or null when no route matches. */
  route(host: string | undefined, target: string): { group: BackendGroup; target: string } | null {
    if (target === '*') {
      // `OPTIONS *` asks about the server, and has no path to match a prefix against: it goes to the group
      // that answers for this Host (RouteTable.matchServer). Prefix rewriting is for paths: `*` is sent as it came.
      const group = this.#routing.table.matchServer(host);
      return group === null ? null : { group, target };
    }
    return this.#routing.table.match(host, target);
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
    const match = this.route(rawHeaderValue(exchange.req.rawHeaders, 'host'), exchange.target);
    if (match === null) {
      return new HoldfastError('HF_ERR_NO_ROUTE', 404, `no route for ${exchange.method} ${exchange.target}`);
    }
    exchange.group = match.group;
    exchange.upstreamTarget = match.target;
    return match.group.admit(exchange, Date.now());
  }

  /**
   * Switch to a new configuration's groups and routes. Built in full before anything changes, so a failure
   * leaves the old one running. Settings outside backends/groups/routes/upstream need a restart.
   */
  reload(config: HoldfastConfig): void {
    const next = this.#build(config);
    const previous = this.#routing;
    this.#routing = next;
    for (const group of previous.groups.values()) {
      this.#retired.add(group);
      group.retire(); // closes its pools once what it admitted has finished
      void group.closed.then(() => this.#retired.delete(group));
    }
    this.log.info({ groups: [...next.groups.keys()], routes: next.table.routes.length }, 'config reloaded');
  }

  /** Graceful: every pool finishes what it has, then closes. */
  async close(): Promise<void> {
    await Promise.all([...this.#routing.groups.values(), ...this.#retired].map((g) => g.close()));
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.#routing.groups.values(), ...this.#retired].map((g) => g.destroy()));
  }

  #build(config: HoldfastConfig): Routing {
    const deps = { config, metrics: this.metrics, log: this.log, stickyKey: this.#stickyKey };
    const configs: [string, GroupConfig][] = Object.entries(config.groups);
    if (config.backends !== undefined) configs.push([DEFAULT_GROUP, shortcutGroup(config.backends)]);
    const groups = new Map<string, BackendGroup>();
    try {
      for (const [name, groupConfig] of configs) groups.set(name, new BackendGroup(name, groupConfig, deps));
    } catch (err) {
      for (const group of groups.values()) void group.destroy();
      throw err;
    }
    const routes = routeConfigs(config).map((route) => compileRoute(route, groups.get(route.group)!));
    const table = new RouteTable(routes);
    const catchAll = table.routes.find((r) => r.exactHost === null && r.hostSuffix === null && r.pathPrefix === '/');
    return { config, groups, table, primary: (catchAll ?? table.routes[0]!).group };
  }
}

/** `backends: [...]`: round-robin at weight 1 with nginx-style passive health; every other group default. */
export function shortcutGroup(backends: readonly string[]): GroupConfig {
  return groupSchema.parse({ servers: backends.map((url) => ({ url })) });
}
