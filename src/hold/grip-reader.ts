import type { ServerResponse } from 'node:http';
import { HoldfastError } from '../errors.js';
import { GripInstructError, headerValue, isJsonInstruct, parseInstruct } from '../grip/instruct.js';
import type { HoldManager, HoldRequest } from './hold-manager.js';
import type { StreamHold } from './stream-hold.js';

/** JSON instructions and non-hold GRIP answers are buffered whole; they are small by nature. */
const MAX_INSTRUCT_BODY_BYTES = 1_048_576;

/** How the reader reports a bad instruction back to the exchange that owns the backend request. */
export interface GripReaderOwner extends HoldRequest {
  failGrip(error: HoldfastError): void;
}

/**
 * Reads one backend response that carries GRIP instructions. A header-instructed stream hold goes to the
 * client at once and its initial body streams through (Pushpin: unlimited); anything else is buffered up to
 * a limit, then parsed whole and handed to the HoldManager.
 */
export class GripResponseReader {
  readonly #manager: HoldManager;
  readonly #owner: GripReaderOwner;
  readonly #code: number;
  readonly #reason: string;
  readonly #headers: string[];
  readonly #limit: number;
  #stream: StreamHold | null = null;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #failed = false;

  constructor(manager: HoldManager, owner: GripReaderOwner, code: number, reason: string, headers: string[], maxResponseHoldBodyBytes: number) {
    this.#manager = manager;
    this.#owner = owner;
    this.#code = code;
    this.#reason = reason;
    this.#headers = headers;
    const hold = headerValue(headers, 'grip-hold');
    this.#limit = hold === 'response' ? maxResponseHoldBodyBytes : MAX_INSTRUCT_BODY_BYTES;
    if (hold === 'stream' && !isJsonInstruct(headers)) {
      try {
        this.#stream = manager.openStream(owner, parseInstruct(code, reason, headers, Buffer.alloc(0)));
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
      this.#manager.activate(this.#stream, this.#owner.lastEventId);
      return;
    }
    try {
      const instruct = parseInstruct(this.#code, this.#reason, this.#headers, Buffer.concat(this.#chunks, this.#bytes));
      this.#chunks = [];
      this.#manager.startFromInstruct(this.#owner, instruct);
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
