import type { ServerResponse } from 'node:http';
import { HoldfastError } from '../errors.js';
import { GripInstructError, headerValue, isJsonInstruct, parseInstruct, type Instruct } from '../grip/instruct.js';
import type { TakeoverRequest } from '../proxy/response-takeover.js';
import type { HoldRequest } from './held-client.js';
import type { StreamHold } from './stream-hold.js';

/** JSON instructions and non-hold GRIP answers are buffered whole; they are small by nature. */
const MAX_INSTRUCT_BODY_BYTES = 1_048_576;

/** Where the reader hands what it read (HoldStart). */
export interface HoldStarter {
  openStream(request: HoldRequest, instruct: Instruct): StreamHold;
  /** A stream whose initial body has gone out: held from now on. */
  activateStream(stream: StreamHold, lastEventId: string | undefined): void;
  startFromInstruct(request: HoldRequest, instruct: Instruct): void;
}

/**
 * Reads one backend response that carries GRIP instructions. A header-instructed stream hold goes to the
 * client at once and its initial body streams through (Pushpin: unlimited); anything else is buffered up to
 * a limit, then parsed whole and handed to HoldStart.
 */
export class GripResponseReader {
  readonly #start: HoldStarter;
  readonly #owner: TakeoverRequest;
  readonly #code: number;
  readonly #reason: string;
  readonly #headers: string[];
  readonly #limit: number;
  #stream: StreamHold | null = null;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #failed = false;

  constructor(start: HoldStarter, owner: TakeoverRequest, code: number, reason: string, headers: string[], maxResponseHoldBodyBytes: number) {
    this.#start = start;
    this.#owner = owner;
    this.#code = code;
    this.#reason = reason;
    this.#headers = headers;
    const hold = headerValue(headers, 'grip-hold');
    this.#limit = hold === 'response' ? maxResponseHoldBodyBytes : MAX_INSTRUCT_BODY_BYTES;
    if (hold === 'stream' && !isJsonInstruct(headers)) {
      try {
        this.#stream = start.openStream(owner, parseInstruct(code, reason, headers, Buffer.alloc(0)));
      } catch (err) {
        this.#fail(err);
      }
    }
  }

  /** A body chunk; false asks undici to pause until the client drains. */
  onData(chunk: Buffer): boolean {
    if (this.#failed) return true;
    if (this.#stream !== null) return this.#stream.write(chunk) && !this.#owner.res.writableNeedDrain;
    this.#bytes += chunk.length;
    if (this.#bytes > this.#limit) {
      this.#fail(
        new GripInstructError(
          `the instruction's body exceeds ${this.#limit} bytes${this.#limit === MAX_INSTRUCT_BODY_BYTES ? '' : ' (push.maxResponseHoldBodyBytes)'}`,
        ),
      );
      return true;
    }
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#failed) return;
    if (this.#stream !== null) {
      this.#start.activateStream(this.#stream, this.#owner.lastEventId);
      return;
    }
    try {
      const instruct = parseInstruct(this.#code, this.#reason, this.#headers, Buffer.concat(this.#chunks, this.#bytes));
      this.#chunks = [];
      this.#start.startFromInstruct(this.#owner, instruct);
    } catch (err) {
      this.#fail(err);
    }
  }

  /** The backend failed mid-body: a stream already started cannot get an error status any more. */
  onError(): void {
    if (this.#stream !== null) this.#destroy(this.#owner.res);
  }

  #fail(err: unknown): void {
    this.#failed = true;
    if (!(err instanceof HoldfastError)) throw err;
    if (this.#stream !== null) {
      // Headers are out; GRIP.md: an unparseable instruction on a stream closes it.
      this.#destroy(this.#owner.res);
      return;
    }
    this.#owner.failGrip(err);
  }

  #destroy(res: ServerResponse): void {
    this.#stream?.end();
    res.destroy();
  }
}
