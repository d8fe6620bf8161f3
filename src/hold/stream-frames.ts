import type { PublishItem } from '../grip/publish-items.js';

/**
 * The bytes a held stream writes, built once and shared by every subscriber: a fan-out writes the same item
 * to thousands of sockets in a row, so everything that depends only on the item (the SSE `id:` line, the
 * HTTP/1.1 chunk framing) is done on the first of them and looked up by the rest.
 */

/** What a stream hold writes for one item: as given to Node's response, and framed as one HTTP/1.1 chunk. */
export interface StreamFrame {
  readonly bytes: Buffer;
  /** `size CRLF bytes CRLF`, for a direct socket write on a chunked response. */
  readonly chunk: Buffer;
}

const SSE_ID_LINE = /^id:/m;
const CRLF = Buffer.from('\r\n');
const chunkCache = new WeakMap<Buffer, Buffer>();
const sseFrames = new WeakMap<PublishItem, StreamFrame>();
const streamFrames = new WeakMap<PublishItem, StreamFrame>();
const EMPTY = Buffer.alloc(0);

/**
 * The bytes framed as one HTTP/1.1 chunk, once per Buffer: Node's `res.write` on a chunked response would
 * queue the size line, the payload and the CRLF separately for each subscriber (three-part writev and its
 * bookkeeping, measured as the largest cost of a fan-out after the syscall itself; bench/fanout).
 */
export function asChunk(bytes: Buffer): Buffer {
  let framed = chunkCache.get(bytes);
  if (framed === undefined) {
    framed = Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, CRLF]);
    chunkCache.set(bytes, framed);
  }
  return framed;
}

/**
 * The last item asked for, per transport: a fan-out asks for the same item once per subscriber, one after
 * another, so an identity check answers all but the first without hashing (a WeakMap lookup, and for SSE
 * the id check, per subscriber were measurable in the fan-out's own share of the CPU; bench/RESULTS.md).
 */
let lastSseItem: PublishItem | null = null;
let lastSseFrame: StreamFrame | null = null;
let lastStreamItem: PublishItem | null = null;
let lastStreamFrame: StreamFrame | null = null;

/** An `http-stream` send item's content as an SSE stream carries it: with the item's id as `id:` when it has none. */
export function sseFrame(item: PublishItem, content: Buffer | undefined): StreamFrame {
  if (item === lastSseItem) return lastSseFrame!;
  let frame = sseFrames.get(item);
  if (frame === undefined) {
    frame = newFrame(withSseId(item, content ?? EMPTY));
    sseFrames.set(item, frame);
  }
  lastSseItem = item;
  lastSseFrame = frame;
  return frame;
}

/** An `http-stream` send item's content as a plain HTTP stream carries it: unchanged. */
export function streamFrame(item: PublishItem, content: Buffer | undefined): StreamFrame {
  if (item === lastStreamItem) return lastStreamFrame!;
  let frame = streamFrames.get(item);
  if (frame === undefined) {
    frame = newFrame(content ?? EMPTY);
    streamFrames.set(item, frame);
  }
  lastStreamItem = item;
  lastStreamFrame = frame;
  return frame;
}

function newFrame(bytes: Buffer): StreamFrame {
  return { bytes, chunk: bytes.length === 0 ? EMPTY : asChunk(bytes) };
}

/**
 * SSE events carry the item's id, so a reconnecting EventSource sends it back as Last-Event-ID; content that
 * has its own `id:` line, or an id that cannot be one line, is left as it is.
 */
function withSseId(item: PublishItem, content: Buffer): Buffer {
  if (item.id === undefined || /[\r\n]/.test(item.id)) return content;
  return SSE_ID_LINE.test(content.toString('utf8')) ? content : Buffer.concat([Buffer.from(`id: ${item.id}\n`), content]);
}
