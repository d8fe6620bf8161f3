import type { ServerResponse } from 'node:http';
import type { GripResponse, Instruct } from '../grip/instruct.js';
import type { PublishItem } from '../grip/publish-items.js';
import { resetConnection, responseSendTarget } from '../edge/send-stall.js';
import { HeldClient, type HoldHost, type HoldOrigin } from './held-client.js';

/** Framing headers a long-poll answer never inherits: its body is a different one. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/**
 * A held long-poll (`Grip-Hold: response`): the first published `http-response` item, or on timeout the
 * backend's original response, becomes the one answer this request gets.
 */
export class ResponseHold extends HeldClient<ServerResponse> {
  readonly transport = 'response' as const;
  /** The backend's response minus Grip-*: the timeout answer, and what a published answer inherits. */
  readonly timeoutResponse: GripResponse;
  readonly timeoutDueMs: number;

  constructor(host: HoldHost, res: ServerResponse, origin: HoldOrigin, instruct: Instruct, nowMs: number) {
    super(host, res, origin, instruct);
    this.timeoutResponse = instruct.response;
    this.timeoutDueMs = nowMs + instruct.timeoutSec * 1000;
  }

  /** One answer per hold: nothing to batch. */
  corkTarget(): null {
    return null;
  }

  /** Its answer did not drain (the response may be finished on our side, so the connection is what goes). */
  override onSendStall(): string {
    this.host.countDrop('drain_timeout');
    resetConnection(responseSendTarget(this.res), this.res);
    return this.transport;
  }

  nextDueMs(): number {
    return Math.min(this.timeoutDueMs, this.nextLinkDueMs);
  }

  onDue(nowMs: number): void {
    if (this.closed) return;
    if (this.timeoutDueMs <= nowMs) {
      this.respond(this.timeoutResponse.code, this.timeoutResponse.reason, this.timeoutResponse.headers, [], this.timeoutResponse.body);
      return;
    }
    this.host.reschedule(this);
  }

  protected carriesContent(item: PublishItem): boolean {
    return item.formats['http-response']?.action === 'send';
  }

  protected deliver(item: PublishItem): boolean {
    const format = item.formats['http-response'];
    if (format === undefined) return false;
    if (format.action === 'hint') {
      this.host.refetch(this);
      return true;
    }
    this.respond(
      format.code ?? 200,
      format.reason ?? '',
      this.timeoutResponse.headers,
      format.headers ?? [],
      format.body ?? Buffer.alloc(0),
    );
    return true;
  }

  /**
   * Answer now: inherited headers, overridden by published ones of the same name (GRIP.md §3), fresh
   * framing for the new body.
   */
  respond(code: number, reason: string, inherited: readonly string[], published: readonly string[], body: Buffer): void {
    if (this.closed) return;
    this.host.release(this, false);
    const overridden = new Set<string>();
    for (let i = 0; i < published.length; i += 2) overridden.add(published[i]!.toLowerCase());
    const headers: string[] = [];
    for (let i = 0; i < inherited.length; i += 2) {
      const lower = inherited[i]!.toLowerCase();
      if (!overridden.has(lower) && !FRAMING.has(lower)) headers.push(inherited[i]!, inherited[i + 1]!);
    }
    for (let i = 0; i < published.length; i += 2) {
      if (!FRAMING.has(published[i]!.toLowerCase())) headers.push(published[i]!, published[i + 1]!);
    }
    if (this.host.draining) headers.push('connection', 'close');
    headers.push('content-length', String(body.length));
    try {
      if (reason) this.res.writeHead(code, reason, headers);
      else this.res.writeHead(code, headers);
      this.res.end(this.res.req.method === 'HEAD' ? undefined : body);
      // A published answer can be large (publish.maxMessageBytes): one the client never reads is cut too.
      this.host.sendStall.noteWrite(responseSendTarget(this.res), this);
    } catch {
      this.res.destroy();
    }
  }
}
