/**
 * How often Node's HTTP server checks its head and request deadlines (`connectionsCheckingInterval`). Its
 * default is 30 s, so a 2 s head limit fired at 23 s; a quarter of the limit, between 100 ms and 1 s, cuts a
 * slowloris within about a second of the limit without a timer storm.
 */
export function deadlineCheckIntervalMs(requestHeadMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(requestHeadMs / 4)));
}
