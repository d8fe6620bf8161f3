import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { H1Response } from './h1-response.js';
import { H2Response } from './h2-compat.js';

/**
 * Node's HTTP server keeps a request parser (a native llhttp instance with room for 32 header fields and
 * values, ~1.7 KB outside the JS heap), its async resource and seven bound per-connection handlers alive
 * for as long as a connection is open, ready for the next request. A held stream never has a next request:
 * the response runs until the client leaves or the stream is closed. At 15,000 held SSE streams those parts
 * were ~3 KB of the ~12.5 KB of RSS each connection cost (bench/fanout, heap snapshot and RSS), so a held
 * stream gives them back, as Node itself does when a connection upgrades (`_http_server.js`,
 * onParserExecuteCommon: unconsume, remove the server's socket listeners, freeParser).
 *
 * This is the one module that touches Node's HTTP internals for that (`_http_common.freeParser`, the
 * parser on `socket.parser`, the server's bound listeners by name, `ServerResponse._last`); it checks each
 * one and changes nothing when one is not what Node 20 has, so a different Node keeps working, only
 * without the saving.
 */

interface NodeParser {
  incoming: IncomingMessage | null;
}
type ParserSocket = Socket & { parser?: NodeParser | null };
type FreeParser = (parser: NodeParser, req: IncomingMessage | null, socket: Socket | null) => void;

const freeParser = loadFreeParser();

function loadFreeParser(): FreeParser | null {
  try {
    const common = createRequire(import.meta.url)('_http_common') as { freeParser?: unknown };
    return typeof common.freeParser === 'function' ? (common.freeParser as FreeParser) : null;
  } catch {
    return null;
  }
}

/** The listeners Node's server puts on every connection for the next request (names from `bind`). */
const SERVER_LISTENERS: ReadonlyArray<readonly [event: string, name: string]> = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['drain', 'bound socketOnDrain'],
];

/**
 * Take the connection under a streaming response away from Node's request parsing. After this the
 * connection closes when the response ends (it can carry no further request), bytes the client sends are
 * discarded, and the connection keeps being read so the client's FIN reaches the hold's watch (client-fin.ts).
 * Returns false, changing nothing, when the connection does not qualify: no socket, the head not yet on the
 * wire, a request body still arriving, or a pipelined request already parsed behind this one.
 */
export function releaseParserForStream(res: ServerResponse): boolean {
  // The edge's own engine frees its parser itself, without any of Node's internals below.
  if (res instanceof H1Response) return res.releaseParser();
  // HTTP/2 has no parser per stream; what a held stream gives back is its compatibility objects' state.
  if (res instanceof H2Response) return res.releaseForHold();
  if (freeParser === null) return false;
  const req: IncomingMessage | undefined = res.req;
  const socket: ParserSocket | null = res.socket;
  if (req === undefined || socket === null || socket.destroyed || !res.headersSent || res.writableEnded) return false;
  const parser = socket.parser;
  if (parser === null || parser === undefined || parser.incoming !== req || !req.complete) return false;
  const listeners = SERVER_LISTENERS.map(([event, name]) => [event, socket.listeners(event).find((l) => l.name === name)] as const);
  if (listeners.some(([, listener]) => listener === undefined)) return false;

  // Node closes the connection after a response marked `_last` (resOnFinish -> destroySoon): nothing
  // would read a next request now.
  (res as ServerResponse & { _last?: boolean })._last = true;
  for (const [event, listener] of listeners) socket.removeListener(event, listener as (...args: unknown[]) => void);
  freeParser(parser, req, socket);
  // Keep reading so the client's FIN is seen; the first `on` also puts back net.Socket's own `on`, which
  // Node's server had wrapped per connection for the parser's sake.
  // The client's FIN ends the connection through the hold's own watch (client-fin.ts, set before this).
  socket.on('data', discardClientBytes);
  // Node's server pauses reading while a pipeline's answers back up and resumes from the drain handler
  // removed above; read on regardless, or a client's FIN would go unseen.
  socket.resume();
  return true;
}

/** A client has nothing to say on a held stream; what it sends anyway is dropped, never buffered. */
function discardClientBytes(): void {}

