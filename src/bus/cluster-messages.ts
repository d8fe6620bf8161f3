import type { Bus, PublishStatus } from './bus.js';

/** The engine behind the hub, as its driver names it. */
export type HubEngine = Exclude<Bus['driver'], 'cluster'>;
/** The engine's state as the workers see it (a closed engine is the primary stopping: `connecting` to them). */
export type EngineState = 'up' | 'connecting';

/**
 * The IPC messages between a worker's cluster bus (cluster-bus.ts) and the hub in the primary
 * (cluster-hub.ts). Small typed objects over node:cluster's JSON channel; items travel encoded by
 * item-codec.ts (JSON turns a Buffer into an array of numbers). Everything received is validated: the
 * channel also carries prom-client's and the cluster control's messages, and a worker is another process.
 */
export type WorkerToHub =
  | { hf: 'bus.hello' }
  | { hf: 'bus.publish'; id: number; items: string[] }
  | { hf: 'bus.history'; id: number; channel: string; afterId: string }
  | { hf: 'bus.subscribe'; channel: string; prefix: boolean }
  | { hf: 'bus.unsubscribe'; channel: string; prefix: boolean }
  | { hf: 'bus.delivered'; id: number; count: number };

export type HubToWorker =
  | { hf: 'bus.welcome'; engine: HubEngine; state: EngineState }
  | { hf: 'bus.state'; state: EngineState }
  | { hf: 'bus.gap'; channel: string }
  | {
      hf: 'bus.published';
      id: number;
      statuses: PublishStatus[];
      delivered: number;
      unreported: number;
      /** Other nodes the engine handed the items to, where it says (Redis); null where it cannot know. */
      remoteNodes: number | null;
    }
  | { hf: 'bus.history-result'; id: number; items: string[]; found: boolean }
  | { hf: 'bus.failed'; id: number; reason: string }
  | { hf: 'bus.deliver'; id: number; items: string[] };

/** One end of an IPC channel: a worker's `process`, or the primary's handle on one worker. */
export interface IpcPort {
  /** False once the channel is closed (the message is dropped). */
  send(message: object): boolean;
  onMessage(listener: (message: unknown) => void): void;
  offMessage(listener: (message: unknown) => void): void;
  onDisconnect(listener: () => void): void;
  readonly connected: boolean;
}

type Fields = Record<string, unknown>;

function tagged(message: unknown, prefix: string): (Fields & { hf: string }) | null {
  if (typeof message !== 'object' || message === null) return null;
  const hf = (message as Fields).hf;
  return typeof hf === 'string' && hf.startsWith(prefix) ? (message as Fields & { hf: string }) : null;
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** A bus message from a worker, or null when it is not one (another subsystem's message, or malformed). */
export function parseWorkerToHub(message: unknown): WorkerToHub | null {
  const m = tagged(message, 'bus.');
  if (m === null) return null;
  switch (m.hf) {
    case 'bus.hello':
      return { hf: m.hf };
    case 'bus.publish':
      return isId(m.id) && isStrings(m.items) ? { hf: m.hf, id: m.id, items: m.items } : null;
    case 'bus.history':
      return isId(m.id) && typeof m.channel === 'string' && typeof m.afterId === 'string'
        ? { hf: m.hf, id: m.id, channel: m.channel, afterId: m.afterId }
        : null;
    case 'bus.subscribe':
    case 'bus.unsubscribe':
      return typeof m.channel === 'string' && typeof m.prefix === 'boolean' ? { hf: m.hf, channel: m.channel, prefix: m.prefix } : null;
    case 'bus.delivered':
      return isId(m.id) && isId(m.count) ? { hf: m.hf, id: m.id, count: m.count } : null;
    default:
      return null;
  }
}

/** A bus message from the hub, or null when it is not one. */
export function parseHubToWorker(message: unknown): HubToWorker | null {
  const m = tagged(message, 'bus.');
  if (m === null) return null;
  switch (m.hf) {
    case 'bus.welcome':
      return isEngine(m.engine) && isEngineState(m.state) ? { hf: m.hf, engine: m.engine, state: m.state } : null;
    case 'bus.state':
      return isEngineState(m.state) ? { hf: m.hf, state: m.state } : null;
    case 'bus.gap':
      return typeof m.channel === 'string' ? { hf: m.hf, channel: m.channel } : null;
    case 'bus.published':
      return isId(m.id) && isId(m.delivered) && isId(m.unreported) && (m.remoteNodes === null || isId(m.remoteNodes)) &&
        Array.isArray(m.statuses) && m.statuses.every(isStatus)
        ? { hf: m.hf, id: m.id, statuses: m.statuses, delivered: m.delivered, unreported: m.unreported, remoteNodes: m.remoteNodes }
        : null;
    case 'bus.history-result':
      return isId(m.id) && isStrings(m.items) && typeof m.found === 'boolean' ? { hf: m.hf, id: m.id, items: m.items, found: m.found } : null;
    case 'bus.failed':
      return isId(m.id) && typeof m.reason === 'string' ? { hf: m.hf, id: m.id, reason: m.reason } : null;
    case 'bus.deliver':
      return isId(m.id) && isStrings(m.items) ? { hf: m.hf, id: m.id, items: m.items } : null;
    default:
      return null;
  }
}

/** A Record, so a status added to PublishStatus fails to compile here until it is listed. */
const STATUSES: Record<PublishStatus, true> = { published: true, queued: true, duplicate: true, dropped: true };

const ENGINES: Record<HubEngine, true> = { memory: true, redis: true, nats: true };

function isEngine(v: unknown): v is HubEngine {
  return typeof v === 'string' && Object.hasOwn(ENGINES, v);
}

function isEngineState(v: unknown): v is EngineState {
  return v === 'up' || v === 'connecting';
}

function isStatus(v: unknown): v is PublishStatus {
  return typeof v === 'string' && Object.hasOwn(STATUSES, v);
}

/** A cluster worker's channel to the primary. */
export function processPort(): IpcPort {
  return {
    send(message) {
      if (process.send === undefined || !process.connected) return false;
      // The callback turns a send on a channel closing under us into a dropped message, not an 'error' event.
      process.send(message, undefined, {}, ignoreSendError);
      return true;
    },
    onMessage: (listener) => void process.on('message', listener),
    offMessage: (listener) => void process.off('message', listener),
    onDisconnect: (listener) => void process.once('disconnect', listener),
    get connected() {
      return process.connected;
    },
  };
}

function ignoreSendError(): void {
  // The 'disconnect' listener reports a lost primary; one dropped message adds nothing.
}
