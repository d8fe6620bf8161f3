import type { PublishItem } from '../grip/publish-items.js';
import type { Logger } from '../observe/log.js';
import type { Metrics } from '../observe/metrics.js';

/** Items published after a given id, for replay. */
export interface HistoryResult {
  /**
   * Oldest first: the items after the id when it was found; when it was not, everything the channel's
   * history still retains (the client announced a gap gets what is left, as nchan does).
   */
  items: PublishItem[];
  /** False when the id is not in the retained history: older than it, or never seen. */
  found: boolean;
}

/**
 * What happened to one published item:
 * - `published`: recorded in its channel's history and sent to every node holding its channel;
 * - `queued`: its `prev-id` is not yet the channel's last id, so it waits for its predecessor (at most
 *   `push.sequenceWaitMs`) and goes out after it, or alone when the wait runs out;
 * - `duplicate`: its id was already published to the channel within `push.dedupWindowMs`; nothing was sent;
 * - `dropped`: too many items already wait for predecessors on the channel (`push.sequenceMaxPending`).
 */
export type PublishStatus = 'published' | 'queued' | 'duplicate' | 'dropped';

/** What one publish request achieved. */
export interface PublishResult {
  /** One per item, in order. */
  statuses: PublishStatus[];
  /** Held connections on this node that the published items reached (the cluster driver: every worker's). */
  delivered: number;
  /**
   * Other nodes the engine handed the items to, when the engine says so (Redis PUBLISH returns its receiver
   * count; the most for any one item); undefined where it cannot know: the memory bus has no other nodes and
   * a NATS core publish has no receiver count.
   */
  remoteNodes: number | undefined;
  /**
   * With workers: how many of this machine's workers holding the channels had not reported their count when
   * the answer was due (`delivered` lacks theirs; the items still reach their clients). Absent elsewhere.
   */
  unreportedWorkers?: number;
}

/** The side of a node that holds clients: the bus hands it what arrives for the channels it subscribed to. */
export interface BusSink {
  /**
   * Items for channels this node holds, in order; one call is one batch (one write per client). Resolves to
   * the deliveries made. A large fan-out may be written in slices that let other work in between, so this
   * is asynchronous; calls are delivered in the order they were made.
   */
  deliver(items: readonly PublishItem[]): Promise<number>;
  /**
   * Items of `channel` were published while this node could not receive them and history no longer has
   * them (a bus outage longer than history keeps): tell the channel's clients they missed data.
   */
  gap(channel: string): void;
  /**
   * The engine went down (`connecting`: reconnecting, publishes refused) or came back (`up`). Optional: a
   * node's hold side reads `Bus.state` when it needs it; the cluster hub relays it to its workers.
   */
  stateChanged?(state: BusState): void;
}

/** `up`: usable; `connecting`: starting or reconnecting (publishes are refused); `closed`: shut down. */
export type BusState = 'connecting' | 'up' | 'closed';

/**
 * What carries published items to the nodes whose clients hold their channels (DESIGN.md). The bus, not
 * the control endpoint, owns what must hold across nodes: prev-id order, id de-duplication and the
 * per-channel history that replay reads. The in-memory driver is the embedded default (one process); the
 * Redis and NATS drivers make several processes or machines one gateway, and the cluster driver lets the
 * workers of one machine share the primary's memory bus.
 *
 * A node subscribes only to the channels its own clients hold. With `prefix`, the subscription is every
 * channel starting with `channel` (the wildcard extension: `scores.*` subscribes with prefix `scores.`).
 */
export interface Bus {
  readonly driver: 'memory' | 'redis' | 'nats' | 'cluster';
  readonly state: BusState;
  /** Resolves once the bus is first usable; rejects with a BusUnavailableError naming the engine and why. */
  start(): Promise<void>;
  /**
   * Sequences, de-duplicates, records and delivers the items of one publish request, in order. Rejects
   * with BusUnavailableError when the engine cannot take them now (nothing was published then, so the
   * publisher may retry).
   */
  publish(items: readonly PublishItem[]): Promise<PublishResult>;
  subscribe(channel: string, prefix?: boolean): void;
  unsubscribe(channel: string, prefix?: boolean): void;
  /** Items after `afterId` in `channel`'s history. */
  history(channel: string, afterId: string): Promise<HistoryResult>;
  close(): Promise<void>;
}

export interface HistoryLimits {
  maxItems: number;
  maxAgeMs: number;
}

/** The push settings every driver enforces the same way. */
export interface BusOptions extends HistoryLimits {
  /** An item whose prev-id is not the channel's last id waits this long for its predecessor. */
  sequenceWaitMs: number;
  /** Items that may wait per channel; more are dropped. */
  sequenceMaxPending: number;
  /** A repeated id within this window is dropped. */
  dedupWindowMs: number;
}

/** What every networked driver is built from (create-bus.ts). */
export interface BusDriverDeps {
  url: URL;
  /** Start of every key, channel and subject in the engine (`bus.prefix`). */
  prefix: string;
  connectTimeoutMs: number;
  /** How long a publish or a history read may wait on the engine before it fails as unavailable. */
  requestTimeoutMs: number;
  options: BusOptions;
  /** Where items for this node's channels go (the hold side's fan-out), given at construction. */
  sink: BusSink;
  metrics: Metrics;
  log: Logger;
}
