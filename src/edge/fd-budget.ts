import { readFileSync } from 'node:fs';
import type { HoldfastConfig } from '../config/schema.js';
import { E, HoldfastError } from '../errors.js';
import type { Logger } from '../observe/log.js';
import { shortcutGroup } from '../proxy/routing.js';
import { serverConnectionCap } from '../proxy/group.js';

/**
 * How many client connections the process's open-files limit really leaves room for. A process driven past
 * its limit does not fail loudly: libuv accepts and closes the extra connections with no answer, and the
 * control listener cannot accept either (issue 11: `/metrics` and `/publish/` got ECONNRESET, a publish
 * reached 0 of 19,891 clients). So `limits.maxConnections` must stay below the limit minus everything else
 * the process keeps open, and past it clients get the edge's 503 with Retry-After instead.
 */

/** Descriptors kept for the control listener's own connections, so it stays reachable at the client limit. */
export const CONTROL_RESERVE = 64;
/**
 * stdio, Node's own (epoll, eventfds, signal pipes: about 25 measured), the two listeners, log files, and
 * connections refused at the limit that wait for their request to be answered 503.
 */
export const PROCESS_RESERVE = 64;
/** A networked bus keeps a few connections (ioredis: commands and subscriber; NATS: one; the cluster IPC). */
export const BUS_RESERVE = 4;

export interface FdBudget {
  /** The soft RLIMIT_NOFILE the process runs under. */
  softLimit: number;
  /** Descriptors set aside, by what they are for. */
  reserve: { backendPools: number; bus: number; control: number; process: number; total: number };
  /** `limits.maxConnections` as configured. */
  configured: number;
  /** What the edge enforces: the configured value, or what the limit leaves when that is less (at least 1). */
  effective: number;
}

/** The soft "Max open files" of this process from /proc/self/limits (Linux); null where there is none. */
export function readOpenFilesLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | null {
  let text: string;
  try {
    text = read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parseOpenFilesLimit(text);
}

/** `Max open files            20000                20000                files` -> 20000; `unlimited` -> null. */
export function parseOpenFilesLimit(limitsText: string): number | null {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (match === null || !/^\d+$/.test(match[1]!)) return null;
  return Number(match[1]);
}

/**
 * Connections the backend pools may open: every server of every group at its cap, +1 for a health check.
 * Not counted: a WebSocket passthrough tunnel's backend connection (one per tunnel, outside the pools; the
 * client side counts against maxConnections) and, for a moment after a reload, the retired groups' pools.
 */
export function backendPoolConnections(config: HoldfastConfig): number {
  const groups = Object.values(config.groups);
  if (config.backends !== undefined) groups.push(shortcutGroup(config.backends));
  let total = 0;
  for (const group of groups) {
    const perServer = serverConnectionCap(group, config.upstream) + (group.healthCheck === undefined ? 0 : 1);
    total += perServer * group.servers.length;
  }
  return total;
}

export function fdBudget(config: HoldfastConfig, softLimit: number): FdBudget {
  const backendPools = backendPoolConnections(config);
  const bus = config.bus.url === 'memory' && config.workers === 1 ? 0 : BUS_RESERVE;
  const total = backendPools + bus + CONTROL_RESERVE + PROCESS_RESERVE;
  const configured = config.limits.maxConnections;
  return {
    softLimit,
    reserve: { backendPools, bus, control: CONTROL_RESERVE, process: PROCESS_RESERVE, total },
    configured,
    effective: Math.max(1, Math.min(configured, softLimit - total)),
  };
}

/**
 * The client connection cap to enforce: `limits.maxConnections`, lowered (one warning with every number)
 * when the open-files limit cannot hold it besides what the process needs otherwise. A limit that leaves no
 * room at all stops the start with the same numbers.
 */
export function clientConnectionCap(config: HoldfastConfig, log: Logger, readLimit: () => number | null = readOpenFilesLimit): number {
  const softLimit = readLimit();
  if (softLimit === null) {
    log.debug('open-files limit not known here (no /proc/self/limits, or unlimited): limits.maxConnections is not checked against it');
    return config.limits.maxConnections;
  }
  const budget = fdBudget(config, softLimit);
  const numbers = {
    openFilesLimit: softLimit,
    reserved: budget.reserve,
    configured: budget.configured,
    effective: budget.effective,
  };
  const room = softLimit - budget.reserve.total;
  if (room < 1) {
    throw new HoldfastError(
      E.FD_LIMIT,
      `the open-files limit (${softLimit}) leaves no room for client connections: ${describeReserve(budget)} are reserved; raise it (ulimit -n) or lower upstream.maxConnectionsPerBackend`,
    );
  }
  if (budget.effective < budget.configured) {
    log.warn(
      numbers,
      `limits.maxConnections (${budget.configured}) lowered to ${budget.effective}: the open-files limit is ${softLimit} and ${describeReserve(budget)} are reserved`,
    );
  } else log.debug(numbers, 'limits.maxConnections fits the open-files limit');
  return budget.effective;
}

function describeReserve({ reserve }: FdBudget): string {
  return `${reserve.total} descriptors (backend pools ${reserve.backendPools}, bus ${reserve.bus}, control listener ${reserve.control}, process ${reserve.process})`;
}
