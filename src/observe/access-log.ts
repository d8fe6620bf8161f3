import type { Logger } from './log.js';

/** One request or WebSocket, as its access line tells it. */
export interface AccessFields {
  client: string;
  method: string;
  target: string;
  /** 0 when no complete answer went out (cut, or a WebSocket that never opened). */
  status: number;
  ms: number;
  backend?: string | undefined;
  attempts?: number | undefined;
  code?: string | undefined;
  /** For WebSockets: passthrough (tunnelled to a backend) or over-http (terminated here). */
  websocket?: 'passthrough' | 'over-http';
}

/**
 * The access log: one JSON line per request and per WebSocket (at its end), unless `log.access` is off or
 * the request's path is one of `log.accessExcludePaths` (something polled every second, such as the demo
 * page's own status requests or a load balancer's health check).
 */
export class AccessLog {
  /** Decided once: building the line for a level that drops it costs more than the proxying. */
  readonly enabled: boolean;
  readonly #log: Logger;
  readonly #excluded: ReadonlySet<string>;

  constructor(settings: { access: boolean; accessExcludePaths: readonly string[] }, log: Logger) {
    this.enabled = settings.access && log.isLevelEnabled('info');
    this.#log = log;
    this.#excluded = new Set(settings.accessExcludePaths);
  }

  write(fields: AccessFields): void {
    if (!this.enabled) return;
    if (this.#excluded.size > 0) {
      const q = fields.target.indexOf('?');
      if (this.#excluded.has(q < 0 ? fields.target : fields.target.slice(0, q))) return;
    }
    this.#log.info(fields, 'access');
  }
}
