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
 * channels its own clients hold. With `prefix`, the subscription is every channel starting with `channel`
 * (the wildcard extension: `scores.*` subscribes with prefix `scores.`).
 */
export interface Bus {
  readonly driver: string;
  setHandler(handler: BusItemHandler): void;
  /** Records the item in its channel's history and delivers it; resolves to this node's delivery count. */
  publish(item: PublishItem): Promise<number>;
  subscribe(channel: string, prefix?: boolean): void;
  unsubscribe(channel: string, prefix?: boolean): void;
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

