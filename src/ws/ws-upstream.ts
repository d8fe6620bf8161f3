import type { PickRequest } from '../proxy/balancer.js';
import type { BackendGroup } from '../proxy/group.js';
import type { Backend } from '../proxy/upstream.js';

/** Where a WebSocket's backend traffic goes: its route's group and the rewritten target. */
export interface WsUpstream {
  group: BackendGroup;
  target: string;
  /** What the group's balancer may hash or pin on. */
  pickRequest: PickRequest;
}

/** A server of the upstream's group, or null when none is taking traffic. */
export function pickBackend(upstream: WsUpstream): Backend | null {
  return upstream.group.pickForConnection(upstream.pickRequest, Date.now());
}
