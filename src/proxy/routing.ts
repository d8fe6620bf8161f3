import { randomBytes } from 'node:crypto';
import { readBackendCa } from './backend-tls.js';
import { DEFAULT_GROUP, groupSchema, type GroupConfig, type HoldfastConfig } from '../config/schema.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';
import { BackendGroup } from './group.js';
import { RouteTable, compileRoute, routeConfigs, type RouteMatch } from './routes.js';

/** One configuration's groups and routes; swapped whole on reload. */
interface Generation {
  readonly config: HoldfastConfig;
  readonly groups: ReadonlyMap<string, BackendGroup>;
  readonly table: RouteTable<BackendGroup>;
}

/**
 * Which group a request goes to: the route table and backend groups of the current configuration, for
 * proxied requests, WebSockets and GRIP links alike. A request is routed when it starts, so after a reload
 * new requests use the new groups while admitted ones finish on the old, which close once idle.
 */
export class Routing {
  readonly #metrics: Metrics;
  readonly #log: Logger;
  /** Sticky ids of groups without their own secret: random per process, kept across reloads. */
  readonly #stickyKey = randomBytes(32);
  #current: Generation;
  readonly #retired = new Set<BackendGroup>();

  constructor(config: HoldfastConfig, metrics: Metrics, log: Logger) {
    this.#metrics = metrics;
    this.#log = log;
    this.#current = this.#build(config);
  }

  /** The current groups and the retired ones still finishing what they admitted before a reload. */
  liveGroups(): BackendGroup[] {
    return [...this.#current.groups.values(), ...this.#retired];
  }

  get groups(): ReadonlyMap<string, BackendGroup> {
    return this.#current.groups;
  }

  /** The group and upstream target for a Host and a checked target, or null when no route matches. */
  route(host: string | undefined, target: string): RouteMatch<BackendGroup> | null {
    if (target === '*') {
      // `OPTIONS *` asks about the server, and has no path to match a prefix against: it goes to the group
      // that answers for this Host (RouteTable.matchServer). Prefix rewriting is for paths: `*` is sent as it came.
      const group = this.#current.table.matchServer(host);
      return group === null ? null : { group, target };
    }
    return this.#current.table.match(host, target);
  }

  /**
   * Switch to a new configuration's groups and routes. Built in full before anything changes, so a failure
   * leaves the old one running. Settings outside backends/groups/routes/upstream need a restart.
   */
  reload(config: HoldfastConfig): void {
    const next = this.#build(config);
    const previous = this.#current;
    this.#current = next;
    for (const group of previous.groups.values()) {
      this.#retired.add(group);
      group.retire(); // closes its pools once what it admitted has finished
      void group.closed.then(() => this.#retired.delete(group));
    }
    this.#log.info({ groups: [...next.groups.keys()], routes: next.table.routes.length }, 'config reloaded');
  }

  /** Graceful: every pool finishes what it has, then closes. */
  async close(): Promise<void> {
    await Promise.all([...this.#current.groups.values(), ...this.#retired].map((g) => g.close()));
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.#current.groups.values(), ...this.#retired].map((g) => g.destroy()));
  }

  #build(config: HoldfastConfig): Generation {
    const deps = { config, metrics: this.#metrics, log: this.#log, stickyKey: this.#stickyKey, backendCa: readBackendCa(config) };
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
    return { config, groups, table: new RouteTable(routes) };
  }
}

/** `backends: [...]`: round-robin at weight 1 with nginx-style passive health; every other group default. */
export function shortcutGroup(backends: readonly string[]): GroupConfig {
  return groupSchema.parse({ servers: backends.map((url) => ({ url })) });
}
