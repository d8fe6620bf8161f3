import type { PublishItem } from '../grip/publish-items.js';

/** Pushpin's message filters (src/handler/filter.cpp) that decide whether a subscriber gets an item. */
export interface FilterSubject {
  /** Subscription metadata (Grip-Set-Meta). */
  readonly meta: Readonly<Record<string, string>>;
  isSubscribedTo(channel: string): boolean;
}

/** False when one of the subscription's filters drops the item for this subscriber. */
export function passesFilters(filters: readonly string[], item: PublishItem, subject: FilterSubject): boolean {
  for (const filter of filters) {
    switch (filter) {
      case 'skip-self': {
        // The publisher's own message is not echoed back to the user who sent it.
        const user = subject.meta.user;
        if (user && item.meta.sender && item.meta.sender === user) return false;
        break;
      }
      case 'skip-users': {
        const user = subject.meta.user;
        if (user && (item.meta.skip_users ?? '').split(',').some((u) => u.trim() === user)) return false;
        break;
      }
      case 'require-sub': {
        const required = item.meta.require_sub;
        if (required && !subject.isSubscribedTo(required)) return false;
        break;
      }
    }
  }
  return true;
}
