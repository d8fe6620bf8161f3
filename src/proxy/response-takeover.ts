import type { ServerResponse } from 'node:http';
import type { HoldfastError } from '../errors.js';

/**
 * The proxied request whose answer is taken over: where the client's answer goes, and what the taker needs
 * to resolve and sign its links later (the request as the backend saw it).
 */
export interface TakeoverRequest {
  readonly res: ServerResponse;
  /** Last-Event-ID from the header or `lastEventId` query parameter, for SSE replay. */
  readonly lastEventId: string | undefined;
  /** The filtered header list sent upstream. */
  readonly upstreamHeaders: string[];
  /** The client's target: what routes match on. */
  readonly target: string;
  /** The target the backend saw (after a route's prefix strip/replace). */
  readonly upstreamTarget: string;
  readonly method: string;
  /** The taker refused the answer (a bad instruction) before anything reached the client: answer with it. */
  failGrip(error: HoldfastError): void;
}

/** One backend answer being taken over: its body flows in, the taker decides what the client gets. */
export interface TakenResponse {
  /** A body chunk; false asks the upstream to pause until the client drains. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /** The backend failed mid-body. */
  onError(): void;
}

/**
 * Where the proxy hands a backend answer that carries GRIP instructions (hold/ implements it). The proxy
 * defines it so that it never imports the push side: the composition root passes the implementation in.
 */
export interface ResponseTakeover {
  readResponse(request: TakeoverRequest, code: number, reason: string, headers: string[]): TakenResponse;
}
