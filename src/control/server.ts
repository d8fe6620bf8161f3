import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { deadlineCheckIntervalMs } from '../http/deadline-check.js';
import { E, HoldfastError } from '../errors.js';
import { sendControlErrorResponse } from '../http/error-response.js';
import type { Metrics } from '../observe/metrics.js';
import { dashboardPage } from './dashboard-page.js';
import type { DashboardFeed } from './dashboard-feed.js';
import type { PublishAuth } from './publish-auth.js';
import type { PublishEndpoint } from './publish.js';
import { listenOn } from '../http/listen-on.js';

export interface ControlDeps {
  metrics: Metrics;
  publish: PublishEndpoint;
  /** `ready` while the edge accepts traffic and the bus is up; otherwise what stands in the way. */
  readiness(): string;
  /**
   * Reload the configuration; throws (or rejects with) a ConfigError, nothing changed, when the new one is
   * bad. A cluster worker's reload reloads every worker and resolves to the answer's text.
   */
  reload?: () => void | Promise<string>;
  /** The metrics text to serve instead of this process's registry (a cluster worker: the whole machine's). */
  metricsText?: () => Promise<string>;
  /** The client side's head and body deadlines, applied here too (a publisher is a client like any other). */
  timeouts: { requestHeadMs: number; requestBodyStallMs: number };
  /**
   * The publish key's check: with `publish.key` set it guards every endpoint that changes state (publish,
   * reload), and the read-only ones too unless `openReads`. Null when no key is set.
   */
  auth: PublishAuth | null;
  /** `/metrics` and `/healthz` answer without the key: on loopback, or when `publish.openReadEndpoints` says so. */
  openReads: boolean;
  /** The dashboard's live feed (`/dashboard/events`). */
  dashboard: DashboardFeed;
}

/**
 * The control listener: Prometheus metrics and health, the publish API, reload and the dashboard. Separate from
 * the client port so none of it is reachable by clients (DESIGN.md).
 */
export class ControlServer {
  readonly server: Server;
  readonly #deps: ControlDeps;

  constructor(deps: ControlDeps) {
    this.#deps = deps;
    const { requestHeadMs, requestBodyStallMs } = deps.timeouts;
    this.server = createServer(
      {
        // Node's defaults (60 s for a head, 300 s for a request, checked every 30 s) would let a slow client
        // hold a control connection for minutes; publish bodies are small, so head plus one stall is plenty.
        headersTimeout: requestHeadMs,
        requestTimeout: requestHeadMs + requestBodyStallMs,
        connectionsCheckingInterval: deadlineCheckIntervalMs(requestHeadMs),
        keepAliveTimeout: 5_000,
      },
      (req, res) => this.#onRequest(req, res),
    );
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#handle(req, res).catch((err: unknown) => {
      const error = err instanceof HoldfastError ? err : new HoldfastError(E.INTERNAL, `internal error: ${(err as Error).message}`, { cause: err });
      sendControlErrorResponse(res, error);
    });
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return listenOn(this.server, 'control', host, port);
  }

  async close(): Promise<void> {
    this.#deps.dashboard.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** False (answered 401) when the publish key is set and the request lacks it; reads may be open. */
  async #authorized(req: IncomingMessage, res: ServerResponse, readOnly: boolean): Promise<boolean> {
    const auth = this.#deps.auth;
    if (auth === null || (readOnly && this.#deps.openReads)) return true;
    if (await auth.verify(req.headers.authorization)) return true;
    refuseUnauthorized(res, 'Bearer');
    return false;
  }

  /**
   * Who may see the dashboard: everything without a publish key or with it; with a key set and the request
   * without it, the numbers where reads are open (loopback, publish.openReadEndpoints) but never channel
   * names, which the key protects; otherwise a 401 whose Basic challenge makes a browser ask for the key.
   */
  async #dashboardAccess(req: IncomingMessage, res: ServerResponse): Promise<'full' | 'numbers' | null> {
    const auth = this.#deps.auth;
    if (auth === null || (await auth.verify(req.headers.authorization))) return 'full';
    if (this.#deps.openReads) return 'numbers';
    refuseUnauthorized(res, BASIC_CHALLENGE);
    return null;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    switch (path) {
      case '/publish':
      case '/publish/':
        return this.#deps.publish.handle(req, res);
      case '/reload': {
        if (!allowMethods(req, res, ['POST'])) return;
        req.resume();
        if (!(await this.#authorized(req, res, false))) return;
        const reload = this.#deps.reload;
        if (reload === undefined) return sendControlErrorResponse(res, new HoldfastError(E.CONTROL_NOT_FOUND, 'reload is not available'));
        let answer: string | void;
        try {
          answer = await reload();
        } catch (err) {
          if (!(err instanceof HoldfastError)) throw err;
          // The same error start-up prints (a ConfigError: every bad key with its value).
          return sendControlErrorResponse(res, err);
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end(answer ?? 'reloaded\n');
        return;
      }
      case '/metrics': {
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return;
        if (!(await this.#authorized(req, res, true))) return;
        let body: string;
        try {
          body = await (this.#deps.metricsText ?? (() => this.#deps.metrics.registry.metrics()))();
        } catch (err) {
          if (!(err instanceof HoldfastError)) throw err;
          return sendControlErrorResponse(res, err);
        }
        res.writeHead(200, { 'content-type': this.#deps.metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      case '/healthz': {
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return;
        if (!(await this.#authorized(req, res, true))) return;
        const readiness = this.#deps.readiness();
        const ready = readiness === 'ready';
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : ready ? 'ok\n' : `${readiness}\n`);
        return;
      }
      case '/dashboard':
      case '/dashboard/': {
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return;
        if ((await this.#dashboardAccess(req, res)) === null) return;
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : dashboardPage());
        return;
      }
      case '/dashboard/events': {
        if (!allowMethods(req, res, ['GET'])) return;
        const access = await this.#dashboardAccess(req, res);
        if (access === null) return;
        this.#deps.dashboard.open(res, access === 'full');
        return;
      }
      case '/dashboard/sign-in': {
        // The page's link when channel names are hidden: the key is asked for here even where reads are open.
        if (!allowMethods(req, res, ['GET'])) return;
        const auth = this.#deps.auth;
        if (auth !== null && !(await auth.verify(req.headers.authorization))) return refuseUnauthorized(res, BASIC_CHALLENGE);
        res.writeHead(303, { location: '/dashboard', 'cache-control': 'no-store' });
        res.end();
        return;
      }
      case '/':
        if (!allowMethods(req, res, ['GET', 'HEAD'])) return;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.method === 'HEAD' ? undefined : 'Holdfast control listener: POST /publish, POST /reload, /metrics, /healthz, /dashboard\n');
        return;
      default:
        sendControlErrorResponse(res, new HoldfastError(E.CONTROL_NOT_FOUND, 'not found'));
    }
  }
}

/** A browser answers this by asking for a user and password, and PublishAuth takes the key as the password. */
const BASIC_CHALLENGE = 'Basic realm="Holdfast control", charset="UTF-8"';

const UNAUTHORIZED = new HoldfastError(E.CONTROL_UNAUTHORIZED, 'this control endpoint needs the publish key (publish.key) in Authorization');

/** Answered to a control request without the publish key where one is needed. */
function refuseUnauthorized(res: ServerResponse, challenge: string): void {
  sendControlErrorResponse(res, UNAUTHORIZED, { 'www-authenticate': challenge });
}

const METHOD_NOT_ALLOWED = new HoldfastError(E.CONTROL_METHOD_NOT_ALLOWED, 'method not allowed');

function allowMethods(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): boolean {
  if (methods.includes(req.method ?? '')) return true;
  sendControlErrorResponse(res, METHOD_NOT_ALLOWED, { allow: methods.join(', ') });
  return false;
}
