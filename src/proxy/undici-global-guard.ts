/**
 * Node 20's built-in fetch and the undici package share one global dispatcher slot
 * (`Symbol.for('undici.globalDispatcher.1')`), and whichever loads first fills it. If undici 7 fills it,
 * every built-in `fetch` in the same process runs on undici 7, which rejects the Content-Length header the
 * GRIP publisher libraries set ("duplicate content-length"): an in-process publisher would break just
 * because Holdfast was imported. Loading Node's own fetch first (one fetch of a data: URL, nothing leaves the
 * process) fills the slot with Node's dispatcher; Holdfast never uses the global one, only its own Pools.
 */
const slot = Symbol.for('undici.globalDispatcher.1');
if ((globalThis as Record<symbol, unknown>)[slot] === undefined) {
  // Synchronous on purpose: the call loads Node's fetch (and fills the slot) before it returns a promise; a
  // top-level await here would let sibling modules, undici among them, evaluate first.
  fetch('data:,').catch(() => undefined);
}
export {};
