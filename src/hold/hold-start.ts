import type { ServerResponse } from 'node:http';
import type { HoldfastConfig } from '../config/schema.js';
import { headerValue, type Instruct, type KeepAlive } from '../grip/instruct.js';
import type { ResponseTakeover, TakeoverRequest } from '../proxy/response-takeover.js';
import { GripResponseReader, type HoldStarter } from './grip-reader.js';
import type { HoldRequest } from './held-client.js';
import { checkInstruct } from './hold-limits.js';
import type { HoldRegistry } from './hold-registry.js';
import { ResponseHold } from './response-hold.js';
import { StreamHold } from './stream-hold.js';

/** Headers a held stream's head never carries: the stream is open-ended, Node frames it. */
const STREAM_DROPPED = new Set(['content-length', 'transfer-encoding']);

/**
 * Turns a backend's GRIP instructions into a hold: the proxy hands it the answer (it is the proxy's
 * ResponseTakeover), it opens the stream or long-poll and gives the client to the registry.
 */
export class HoldStart implements ResponseTakeover, HoldStarter {
  readonly #registry: HoldRegistry;
  readonly #maxChannelsPerConnection: number;
  readonly #maxResponseHoldBodyBytes: number;
  readonly #sseHeartbeat: KeepAlive | null;

  constructor(registry: HoldRegistry, config: HoldfastConfig) {
    this.#registry = registry;
    const push = config.push;
    this.#maxChannelsPerConnection = push.maxChannelsPerConnection;
    this.#maxResponseHoldBodyBytes = push.maxResponseHoldBodyBytes;
    this.#sseHeartbeat =
      push.sseHeartbeatMs > 0 ? { data: Buffer.from(':\n\n'), timeoutSec: push.sseHeartbeatMs / 1000, mode: 'idle' } : null;
  }

  /** A backend answered with GRIP instructions: read them on behalf of the proxied request. */
  readResponse(request: TakeoverRequest, code: number, reason: string, headers: string[]): GripResponseReader {
    return new GripResponseReader(this, request, code, reason, headers, this.#maxResponseHoldBodyBytes);
  }

  /** Opens a stream hold: head out now, initial body streamed by the caller, then `activate`. */
  openStream(request: HoldRequest, instruct: Instruct): StreamHold {
    checkInstruct(instruct, this.#maxChannelsPerConnection);
    const contentType = headerValue(instruct.response.headers, 'content-type') ?? '';
    const sse = contentType.split(';')[0]!.trim().toLowerCase() === 'text/event-stream';
    const stream = new StreamHold(this.#registry, request.res, request, instruct, sse, this.#sseHeartbeat);
    const headers: string[] = [];
    const source = instruct.response.headers;
    for (let i = 0; i < source.length; i += 2) {
      if (!STREAM_DROPPED.has(source[i]!.toLowerCase())) headers.push(source[i]!, source[i + 1]!);
    }
    if (this.#registry.draining) headers.push('connection', 'close');
    if (instruct.response.reason) request.res.writeHead(instruct.response.code, instruct.response.reason, headers);
    else request.res.writeHead(instruct.response.code, headers);
    // A stream must reach the client now, not when the first message comes.
    request.res.flushHeaders();
    return stream;
  }

  /** A stream whose initial body has gone out: held from now on. */
  activateStream(stream: StreamHold, lastEventId: string | undefined): void {
    this.#registry.activate(stream, lastEventId);
  }

  /** A complete GRIP response (JSON instruct, long-poll, or a stream whose body was buffered). */
  startFromInstruct(request: HoldRequest, instruct: Instruct): void {
    const registry = this.#registry;
    if (instruct.hold === 'stream') {
      const stream = this.openStream(request, instruct);
      stream.write(instruct.response.body);
      registry.activate(stream, request.lastEventId);
      return;
    }
    if (instruct.hold === 'response') {
      checkInstruct(instruct, this.#maxChannelsPerConnection);
      const hold = new ResponseHold(registry, request.res, request, instruct, Date.now());
      registry.activate(hold, undefined);
      return;
    }
    if (instruct.nextLink !== null) {
      // No hold but a next link: a paged stream. The client gets each page as the backend answers it.
      const stream = this.openStream(request, instruct);
      stream.write(instruct.response.body);
      registry.activate(stream, undefined);
      registry.links.fetchNext(stream, 'idle');
      return;
    }
    // GRIP headers without a hold: an ordinary answer, minus the instructions.
    relayPlain(request.res, instruct, registry.draining);
  }
}

/** GRIP headers but no hold: the client gets the response as an ordinary one, minus the instructions. */
function relayPlain(res: ServerResponse, instruct: Instruct, draining: boolean): void {
  const headers: string[] = [];
  const source = instruct.response.headers;
  for (let i = 0; i < source.length; i += 2) {
    const lower = source[i]!.toLowerCase();
    if (lower !== 'content-length' && lower !== 'transfer-encoding') headers.push(source[i]!, source[i + 1]!);
  }
  if (draining) headers.push('connection', 'close');
  headers.push('content-length', String(instruct.response.body.length));
  if (instruct.response.reason) res.writeHead(instruct.response.code, instruct.response.reason, headers);
  else res.writeHead(instruct.response.code, headers);
  res.end(res.req.method === 'HEAD' ? undefined : instruct.response.body);
}
