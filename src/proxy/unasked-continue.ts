import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * undici 7 (7.30, and 8.13 still) destroys a backend connection that answers `100 Continue` to a request that
 * did not ask for one (client-h1.js onHeadersComplete: "bad response"), so the client got a 502 although the
 * backend's final answer was on its way (issue 15, defect 9; HAProxy relays both). Its other interim answers
 * (102, 103) it hands to the handler's onHeaders and then parses the final answer as usual. RFC 9110 §15.2: a
 * client must parse 1xx answers it did not expect. So the one method of undici's HTTP/1 parser is wrapped to
 * take a 100 the way it takes the others: as a stand-in status undici has no special case for, which
 * `interimStatus` maps back to 100 while the handler's onHeaders runs (synchronously, inside that call).
 *
 * The parser class is not exported; it is reached through the first backend socket (`socket[kParser]`, set by
 * undici before it reads the socket). If an undici upgrade moves either, nothing is wrapped and an unasked 100
 * is a 502 again: test/proxy/interim-answers.test.ts fails, which is how the upgrade finds out.
 */
const STAND_IN = 199;
let inUnasked100 = false;
let wrapped = false;
const kParser = loadParserSymbol();

type HeadersComplete = (this: unknown, statusCode: number, upgrade: boolean, shouldKeepAlive: boolean) => number;

function loadParserSymbol(): symbol | null {
  try {
    const require = createRequire(import.meta.url);
    const symbols = require('undici/lib/core/symbols.js') as { kParser?: unknown };
    return typeof symbols.kParser === 'symbol' ? symbols.kParser : null;
  } catch {
    return null;
  }
}

/** The status undici reported, with an unasked 100 given back its own number. */
export function interimStatus(statusCode: number): number {
  return statusCode === STAND_IN && inUnasked100 ? 100 : statusCode;
}

/** Every new backend socket, before undici listens to it: the first one to have data wraps the parser. */
export function acceptUnaskedContinue(socket: Socket): void {
  if (wrapped || kParser === null) return;
  socket.once('readable', wrapParserOf);
}

function wrapParserOf(this: Socket): void {
  if (wrapped) return;
  const parser = (this as Socket & Record<symbol, unknown>)[kParser!];
  const proto = parser === null || typeof parser !== 'object' ? null : (Object.getPrototypeOf(parser) as Record<string, unknown>);
  const original = proto?.onHeadersComplete;
  if (proto == null || typeof original !== 'function') return;
  const onHeadersComplete = original as HeadersComplete;
  proto.onHeadersComplete = function onHeadersCompleteUnasked100(statusCode: number, upgrade: boolean, shouldKeepAlive: boolean): number {
    if (statusCode !== 100 || upgrade) return onHeadersComplete.call(this, statusCode, upgrade, shouldKeepAlive);
    inUnasked100 = true;
    try {
      return onHeadersComplete.call(this, STAND_IN, upgrade, shouldKeepAlive);
    } finally {
      inUnasked100 = false;
    }
  };
  wrapped = true;
}
