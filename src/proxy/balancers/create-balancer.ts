import type { GroupConfig } from '../../config/schema.js';
import type { Balancer } from '../balancer.js';
import type { Backend } from '../upstream.js';
import { ConsistentHashBalancer } from './consistent-hash.js';
import { LeastRequestsBalancer } from './least-requests.js';
import { RoundRobinBalancer } from './round-robin.js';

/** The balancer a group's algorithm names; apart from balancer.ts, which the drivers import (no import cycle). */
export function createBalancer(config: GroupConfig, servers: readonly Backend[]): Balancer {
  switch (config.algorithm) {
    case 'roundRobin':
      return new RoundRobinBalancer(servers);
    case 'leastRequests':
      return new LeastRequestsBalancer(servers);
    case 'hash':
      return new ConsistentHashBalancer(servers, config.hashOn!);
  }
}
