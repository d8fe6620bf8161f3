import type { BusSink } from '../../src/bus/bus.js';

/** A bus sink for tests that only publish or read history: nothing held here, so nothing is delivered. */
export const discardSink: BusSink = { deliver: () => Promise.resolve(0), gap: () => undefined };
