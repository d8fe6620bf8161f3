import type { PublishItem } from '../grip/publish-items.js';

/** Items published after a given id, for replay. */
export interface HistoryResult {
  /** Oldest first. */
  items: PublishItem[];
  /** False when the id is not in the retained history: older than it, or never seen. */
  found: boolean;
}

/** Called with each item for a channel this node subscribed to; returns deliveries made on this node. */
export type BusItemHandler = (item: PublishItem) => number;

/**
 * What carries published items to the nodes whose clients hold their channels. The in-memory driver is the
 * embedded default; Redis and NATS drivers make several processes one gateway. A node subscribes only to the
 * channels its own clients hold. A subscription ending in `.*` is a prefix (wildcard) subscription.
 */
export interface Bus {
  readonly driver: string;
  setHandler(handler: BusItemHandler): void;
  /** Records the item in its channel's history and delivers it; resolves to this node's delivery count. */
  publish(item: PublishItem): Promise<number>;
  subscribe(channelOrPattern: string): void;
  unsubscribe(channelOrPattern: string): void;
  /** Items after `afterId` in `channel`'s history. */
  history(channel: string, afterId: string): Promise<HistoryResult>;
  /** The id of the channel's last published item, for prev-id sequencing. */
  lastId(channel: string): string | undefined;
  close(): Promise<void>;
}

export interface HistoryLimits {
  maxItems: number;
  maxAgeMs: number;
}

/** `scores.*` matches `scores.a` and `scores.a.b`, never `scores` itself. */
export function wildcardPrefix(pattern: string): string | null {
  return pattern.endsWith('.*') ? pattern.slice(0, -1) : null;
}
