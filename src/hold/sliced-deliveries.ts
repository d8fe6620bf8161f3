import type { Logger } from '../observe/log.js';

/** One fan-out: the clients it reaches (fixed when it was queued) and how far it got. */
interface Job<C> {
  readonly clients: readonly C[];
  readonly visit: (client: C) => number;
  resolve: (delivered: number) => void;
  next: number;
  delivered: number;
}

/**
 * Runs fan-outs a slice at a time: at most `sliceSize` clients per turn of the event loop, then the rest
 * after `setImmediate`, which comes after the poll phase, so requests on the control listener, timers and
 * other sockets get in between. A write to a socket costs 10-20 us here (DESIGN.md), so one publish to 20k
 * clients was 300-550 ms of one uninterrupted turn (issue 11: `/healthz` waited that long behind it).
 *
 * Jobs run strictly one after another, in the order they were queued: a client can never see a later
 * publish before an earlier one, whatever their sizes. A fan-out that fits in one slice while nothing is
 * queued runs at once, inside the call, as before (no promise round trip, no extra turn).
 */
export class SlicedDeliveries<C> {
  readonly sliceSize: number;
  readonly #log: Logger;
  readonly #jobs: Job<C>[] = [];
  /** Index of the first job not yet finished. */
  #head = 0;
  /** Inside a visit: a fan-out started from there (nothing does today) must queue, not cut in. */
  #visiting = false;

  constructor(sliceSize: number, log: Logger) {
    this.sliceSize = sliceSize;
    this.#log = log;
  }

  /** Fan-outs queued or in progress. */
  get pending(): number {
    return this.#jobs.length - this.#head;
  }

  /** Calls `visit` once for each of `clients`, summing what it returns; resolves once all were visited. */
  run(clients: readonly C[], visit: (client: C) => number): Promise<number> {
    const job: Job<C> = { clients, visit, resolve: noop, next: 0, delivered: 0 };
    if (this.pending === 0 && !this.#visiting && clients.length <= this.sliceSize) {
      this.#visit(job, clients.length);
      return Promise.resolve(job.delivered);
    }
    return new Promise<number>((resolve) => {
      job.resolve = resolve;
      this.#jobs.push(job);
      // Nothing ran before it: its first slice goes now. Otherwise a slice is already scheduled.
      if (this.pending > 1) return;
      if (this.#visiting) setImmediate(() => this.#slice());
      else this.#slice();
    });
  }

  #slice(): void {
    let budget = this.sliceSize;
    while (budget > 0 && this.pending > 0) {
      const job = this.#jobs[this.#head]!;
      const end = Math.min(job.clients.length, job.next + budget);
      budget -= end - job.next;
      this.#visit(job, end);
      if (end < job.clients.length) break;
      this.#jobs[this.#head] = undefined as unknown as Job<C>;
      this.#head++;
      if (this.#head === this.#jobs.length || this.#head >= 1024) {
        // Dropped from the front in bulk, not shift()ed one by one (a queue that never empties stays bounded).
        this.#jobs.splice(0, this.#head);
        this.#head = 0;
      }
      job.resolve(job.delivered);
    }
    if (this.pending > 0) setImmediate(() => this.#slice());
  }

  #visit(job: Job<C>, end: number): void {
    const { clients, visit } = job;
    this.#visiting = true;
    for (let i = job.next; i < end; i++) {
      try {
        job.delivered += visit(clients[i]!);
      } catch (err) {
        // A write that throws is a bug, not a slow client: the others still get the item.
        this.#log.error({ err }, 'a delivery to one client failed');
      }
    }
    this.#visiting = false;
    job.next = end;
  }
}

function noop(): void {}
