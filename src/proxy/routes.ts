import { DEFAULT_GROUP, type HoldfastConfig, type RouteConfig } from '../config/schema.js';

/** One route, compiled: how to match a request and what to forward it as. */
export interface Route<G> {
  readonly group: G;
  /** Lower-cased exact host, or null for any host. */
  readonly exactHost: string | null;
  /** For `*.example.com`: `.example.com`, matched as a suffix; null otherwise. */
  readonly hostSuffix: string | null;
  readonly pathPrefix: string;
  /** What replaces pathPrefix upstream; null keeps the path as it is. */
  readonly replaceWith: string | null;
}

export interface RouteMatch<G> {
  readonly group: G;
  /** The origin-form target to send upstream, after prefix strip/replace. */
  readonly target: string;
}

/**
 * The routes of one configuration, most specific first: an exact host before a wildcard (longer suffix
 * first) before any host, then a longer path prefix before a shorter one; ties keep the file's order.
 * nginx's order too: pick the server by name, then the longest location prefix.
 */
export class RouteTable<G> {
  readonly routes: readonly Route<G>[];

  constructor(routes: readonly Route<G>[]) {
    this.routes = [...routes].sort(compareSpecificity);
  }

  /** `host` is the Host header as sent (may carry a port); `target` the origin-form request target. */
  match(host: string | undefined, target: string): RouteMatch<G> | null {
    const hostname = normalHost(host);
    for (const route of this.routes) {
      if (!hostMatches(route, hostname) || !pathMatches(route.pathPrefix, target)) continue;
      return { group: route.group, target: rewriteTarget(route, target) };
    }
    return null;
  }

  /**
   * The group that answers for a host as a whole (`OPTIONS *`, which has no path): where its `/` goes, or,
   * when the host only has routes below `/`, its route with the shortest prefix among its most specific ones.
   */
  matchServer(host: string | undefined): G | null {
    const root = this.match(host, '/');
    if (root !== null) return root.group;
    const hostname = normalHost(host);
    let best: Route<G> | null = null;
    for (const route of this.routes) {
      if (!hostMatches(route, hostname)) continue;
      // Sorted by host specificity, then longer prefix first: within the first host rank, the last is shortest.
      if (best !== null && hostRank(route) !== hostRank(best)) break;
      best = route;
    }
    return best?.group ?? null;
  }
}

function normalHost(host: string | undefined): string {
  return host === undefined ? '' : stripPort(host).toLowerCase();
}

function hostMatches(route: Route<unknown>, hostname: string): boolean {
  if (route.exactHost !== null) return route.exactHost === hostname;
  if (route.hostSuffix !== null) return hostname.endsWith(route.hostSuffix) && hostname.length > route.hostSuffix.length;
  return true;
}

/** The routes a configuration declares, plus the catch-all `backends: [...]` implies. */
export function routeConfigs(config: HoldfastConfig): RouteConfig[] {
  const routes = [...config.routes];
  if (config.backends !== undefined) {
    routes.push({ pathPrefix: '/', group: DEFAULT_GROUP, stripPrefix: false });
  }
  return routes;
}

export function compileRoute<G>(route: RouteConfig, group: G): Route<G> {
  const host = route.host ?? null;
  const wildcard = host?.startsWith('*.') ?? false;
  return {
    group,
    exactHost: wildcard ? null : host,
    hostSuffix: wildcard ? host!.slice(1) : null,
    pathPrefix: route.pathPrefix,
    replaceWith: route.replacePrefix ?? (route.stripPrefix ? '/' : null),
  };
}

function hostRank(route: Route<unknown>): number {
  if (route.exactHost !== null) return 1_000_000;
  if (route.hostSuffix !== null) return route.hostSuffix.length;
  return -1;
}

function compareSpecificity(a: Route<unknown>, b: Route<unknown>): number {
  return hostRank(b) - hostRank(a) || b.pathPrefix.length - a.pathPrefix.length;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/**
 * Prefix match on segment boundaries: `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`. A prefix
 * ending in `/` matches everything below it.
 */
function pathMatches(prefix: string, target: string): boolean {
  if (prefix === '/') return true;
  if (!target.startsWith(prefix)) return false;
  if (target.length === prefix.length || prefix.endsWith('/')) return true;
  const next = target.charCodeAt(prefix.length);
  return next === 0x2f /* / */ || next === 0x3f /* ? */;
}

function rewriteTarget(route: Route<unknown>, target: string): string {
  if (route.replaceWith === null || route.pathPrefix === '/') {
    return route.replaceWith === null || route.replaceWith === '/' ? target : joinPath(route.replaceWith, target.slice(1));
  }
  const rest = target.slice(route.pathPrefix.length);
  return joinPath(route.replaceWith, rest);
}

/** `/v2` + `/users` = `/v2/users`; `/v2/` + `users` = `/v2/users`; `/` + `?q` = `/?q`; `/v2` + `` = `/v2`. */
function joinPath(base: string, rest: string): string {
  if (rest === '' ) return base;
  if (rest.startsWith('?')) return `${base}${rest}`;
  const b = base.endsWith('/') ? base.slice(0, -1) : base;
  const r = rest.startsWith('/') ? rest : `/${rest}`;
  return `${b}${r}`;
}
