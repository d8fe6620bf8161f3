import { createRequire } from 'node:module';

/**
 * Node's own llhttp binding, the parser its HTTP server runs, used by the edge's HTTP/1 engine without the
 * server around it (src/edge/h1-server.ts). Node exposes it only through `_http_common` (deprecated as a
 * public module, DEP0199), so this is the one module that reaches for it, and it checks every part the
 * engine uses before anything relies on them: `llhttpMissing` names what is not there, and the edge then
 * falls back to Node's HTTP server (test/edge/h1-engine.test.ts fails if that ever happens on the Node we
 * ship for). Strictness is llhttp's, unchanged: no lenient flags.
 */

/** The native parser as Node 20 builds it (src/node_http_parser.cc). */
export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  /** Bytes parsed, or the parse error (with `code`, `reason`, `bytesParsed`). */
  execute(data: Buffer): number | ParseError;
  /** Feed the parser straight from a libuv stream handle: reads never become JavaScript buffers. */
  consume(handle: object): void;
  unconsume(): void;
  /** The stream ended: an error when a message was cut off mid-way. */
  finish(): ParseError | undefined | number;
  /** Give the native parser's memory back now (else the garbage collector does). */
  close(): void;
  /** A copy of the read being parsed (only valid inside a callback). */
  getCurrentBuffer(): Buffer;
  /** Pause the parser between callbacks (a pipelined request waits behind an upgrade, say). */
  pause(): void;
  resume(): void;
  free(): void;
  [callback: number]: unknown;
}

export interface ParseError extends Error {
  code: string;
  reason?: string;
  bytesParsed?: number;
  rawPacket?: Buffer;
}

export interface Llhttp {
  /** Constructs a parser; `initialize` it before use. */
  readonly Parser: new () => NativeParser;
  readonly REQUEST: number;
  /** Method numbers as llhttp reports them, to names. */
  readonly methods: readonly string[];
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
}

const PROTOTYPE_METHODS = ['initialize', 'execute', 'consume', 'unconsume', 'finish', 'getCurrentBuffer', 'pause', 'resume', 'free', 'close'] as const;
const CALLBACK_SLOTS = ['kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'] as const;

interface Loaded {
  llhttp: Llhttp | null;
  missing: string[];
}

const loaded: Loaded = load();

/** Node's llhttp binding, or null when this Node lacks a part of it (see `llhttpMissing`). */
export const llhttp: Llhttp | null = loaded.llhttp;

/** What the start-up check found missing, by name: empty when the engine can run. */
export function llhttpMissing(): readonly string[] {
  return loaded.missing;
}

function load(): Loaded {
  let common: { HTTPParser?: unknown; methods?: unknown };
  try {
    common = createRequire(import.meta.url)('_http_common') as typeof common;
  } catch (err) {
    return { llhttp: null, missing: [`the _http_common module (${(err as Error).message})`] };
  }
  const missing: string[] = [];
  const Parser = common.HTTPParser as (new () => NativeParser) & Record<string, unknown>;
  if (typeof Parser !== 'function') return { llhttp: null, missing: ['_http_common.HTTPParser'] };
  for (const name of PROTOTYPE_METHODS) {
    if (typeof (Parser.prototype as Record<string, unknown>)[name] !== 'function') missing.push(`HTTPParser.prototype.${name}`);
  }
  for (const name of [...CALLBACK_SLOTS, 'REQUEST']) {
    if (typeof Parser[name] !== 'number') missing.push(`HTTPParser.${name}`);
  }
  const methods = common.methods;
  if (!Array.isArray(methods) || !methods.includes('GET')) missing.push('_http_common.methods');
  if (missing.length > 0) return { llhttp: null, missing };
  return {
    missing,
    llhttp: {
      Parser,
      REQUEST: Parser.REQUEST as number,
      methods: methods as string[],
      kOnMessageBegin: Parser.kOnMessageBegin as number,
      kOnHeaders: Parser.kOnHeaders as number,
      kOnHeadersComplete: Parser.kOnHeadersComplete as number,
      kOnBody: Parser.kOnBody as number,
      kOnMessageComplete: Parser.kOnMessageComplete as number,
      kOnExecute: Parser.kOnExecute as number,
    },
  };
}
