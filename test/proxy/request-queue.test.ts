// The group's waiting line (request-queue.ts) against a plain array doing the same, under random operations:
// order, removals from the middle, drains that place some and refuse one, drains re-entered from a placement
// (a placed request that finishes at once frees a slot and drains again), and timeouts on a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RequestQueue } from '../../src/proxy/request-queue.js';

const TIMEOUT_MS = 1_000;

type Op =
  | { kind: 'push' }
  | { kind: 'remove'; pick: number }
  | { kind: 'drain'; places: number; reenterAt: number; stop: boolean }
  | { kind: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Op>({ kind: 'push' }) },
  { weight: 2, arbitrary: fc.nat(50).map((pick): Op => ({ kind: 'remove', pick })) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drain' as const), places: fc.nat(6), reenterAt: fc.integer({ min: -1, max: 5 }), stop: fc.boolean() }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 700 }).map((ms): Op => ({ kind: 'tick', ms })) },
);

test('request queue: FIFO with removals, drains (re-entered too) and timeouts, as a plain array does it', (t) => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
      t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
      try {
        const model: { id: number; at: number }[] = [];
        const timedOut: number[] = [];
        const modelTimedOut: number[] = [];
        const queue = new RequestQueue<number>(40, TIMEOUT_MS, { onQueueTimeout: (id) => timedOut.push(id) });
        let next = 0;
        for (const o of ops) {
          const now = Date.now();
          if (o.kind === 'push') {
            const accepted = queue.push(next, now);
            assert.equal(accepted, model.length < 40);
            if (accepted) model.push({ id: next, at: now });
            next++;
          } else if (o.kind === 'remove') {
            const victim = model.length === 0 ? next + 1 : model[o.pick % model.length]!.id;
            const i = model.findIndex((e) => e.id === victim);
            assert.equal(queue.remove(victim, now), i < 0 ? -1 : now - model[i]!.at);
            if (i >= 0) model.splice(i, 1);
          } else if (o.kind === 'drain') {
            // Place the first `places` offered; at the `reenterAt`-th placement, drain again from inside and
            // place one more there (as a request that finishes at once frees its slot).
            const placed: number[] = [];
            let budget = o.places;
            const place = (id: number): boolean => {
              if (budget === 0) return false;
              budget--;
              placed.push(id);
              if (placed.length - 1 === o.reenterAt && budget > 0) queue.drain(now, place, true);
              return true;
            };
            queue.drain(now, place, o.stop);
            // What the model expects: the oldest `places` go, in order (a refusal means no room for anyone).
            const want = model.splice(0, Math.min(o.places, model.length)).map((e) => e.id);
            assert.deepEqual(placed, want);
          } else {
            t.mock.timers.tick(o.ms);
            const at = Date.now();
            while (model.length > 0 && at - model[0]!.at >= TIMEOUT_MS) modelTimedOut.push(model.shift()!.id);
            assert.deepEqual(timedOut, modelTimedOut, 'timed out in order, each once');
          }
          assert.equal(queue.length, model.length);
        }
        const left = queue.clear();
        assert.deepEqual([...left].sort((a, b) => a - b), model.map((e) => e.id).sort((a, b) => a - b));
      } finally {
        t.mock.timers.reset();
      }
    }),
    { numRuns: 300 },
  );
});
