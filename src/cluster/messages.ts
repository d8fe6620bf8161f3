import { ConfigError, type ConfigIssue, E, errorDefOf, HoldfastError, isAnswerable } from '../errors.js';

/**
 * The IPC messages between the primary and its workers that are not the bus's (src/bus/cluster-messages.ts):
 * start-up, reload, metrics and drain. Validated on receipt like the bus's: the channel is shared with them.
 */
export interface Address {
  host: string;
  port: number;
}

/** A HoldfastError as it crosses the channel; a ConfigError keeps its issues so the answer lists every bad key. */
export interface WireError {
  code: string;
  httpStatus: number;
  message: string;
  issues?: ConfigIssue[];
}

export type WorkerToPrimary =
  | { hf: 'cluster.ready'; listen: Address; control: Address }
  | { hf: 'cluster.start-failed'; message: string; exitCode: number }
  | { hf: 'cluster.reload-all'; id: number }
  | { hf: 'cluster.reloaded'; id: number; error?: WireError }
  | { hf: 'cluster.metrics'; id: number }
  | { hf: 'cluster.metrics-json'; id: number; metrics: unknown[] };

export type PrimaryToWorker =
  | { hf: 'cluster.reload'; id: number }
  | { hf: 'cluster.reload-all-result'; id: number; applied: number; workers: number; error?: WireError }
  | { hf: 'cluster.collect-metrics'; id: number }
  | { hf: 'cluster.metrics-result'; id: number; text?: string; error?: string }
  | { hf: 'cluster.drain' };

type Fields = Record<string, unknown> & { hf: string };

function tagged(message: unknown): Fields | null {
  if (typeof message !== 'object' || message === null) return null;
  const hf = (message as Fields).hf;
  return typeof hf === 'string' && hf.startsWith('cluster.') ? (message as Fields) : null;
}

const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function isAddress(v: unknown): v is Address {
  return typeof v === 'object' && v !== null && typeof (v as Address).host === 'string' && isId((v as Address).port);
}

function wireError(v: unknown): WireError | undefined | null {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null) return null;
  const e = v as WireError;
  if (typeof e.code !== 'string' || !isId(e.httpStatus) || typeof e.message !== 'string') return null;
  if (e.issues !== undefined && !(Array.isArray(e.issues) && e.issues.every((i) => typeof i?.path === 'string' && typeof i.expected === 'string'))) {
    return null;
  }
  return e.issues === undefined ? { code: e.code, httpStatus: e.httpStatus, message: e.message } : { code: e.code, httpStatus: e.httpStatus, message: e.message, issues: e.issues };
}

export function parseWorkerToPrimary(message: unknown): WorkerToPrimary | null {
  const m = tagged(message);
  if (m === null) return null;
  switch (m.hf) {
    case 'cluster.ready':
      return isAddress(m.listen) && isAddress(m.control) ? { hf: m.hf, listen: m.listen, control: m.control } : null;
    case 'cluster.start-failed':
      return typeof m.message === 'string' && isId(m.exitCode) ? { hf: m.hf, message: m.message, exitCode: m.exitCode } : null;
    case 'cluster.reload-all':
    case 'cluster.metrics':
      return isId(m.id) ? { hf: m.hf, id: m.id } : null;
    case 'cluster.reloaded': {
      const error = wireError(m.error);
      if (!isId(m.id) || error === null) return null;
      return error === undefined ? { hf: m.hf, id: m.id } : { hf: m.hf, id: m.id, error };
    }
    case 'cluster.metrics-json':
      return isId(m.id) && Array.isArray(m.metrics) ? { hf: m.hf, id: m.id, metrics: m.metrics as unknown[] } : null;
    default:
      return null;
  }
}

export function parsePrimaryToWorker(message: unknown): PrimaryToWorker | null {
  const m = tagged(message);
  if (m === null) return null;
  switch (m.hf) {
    case 'cluster.reload':
    case 'cluster.collect-metrics':
      return isId(m.id) ? { hf: m.hf, id: m.id } : null;
    case 'cluster.reload-all-result': {
      const error = wireError(m.error);
      if (!isId(m.id) || !isId(m.applied) || !isId(m.workers) || error === null) return null;
      const result = { hf: m.hf, id: m.id, applied: m.applied, workers: m.workers };
      return error === undefined ? result : { ...result, error };
    }
    case 'cluster.metrics-result': {
      if (!isId(m.id) || (m.text !== undefined && typeof m.text !== 'string') || (m.error !== undefined && typeof m.error !== 'string')) return null;
      return { hf: m.hf, id: m.id, ...(typeof m.text === 'string' ? { text: m.text } : {}), ...(typeof m.error === 'string' ? { error: m.error } : {}) };
    }
    case 'cluster.drain':
      return { hf: m.hf };
    default:
      return null;
  }
}

export function toWireError(err: HoldfastError): WireError {
  const wire: WireError = { code: err.code, httpStatus: err.httpStatus, message: err.message };
  if (err instanceof ConfigError) wire.issues = [...err.issues];
  return wire;
}

/** The error again; a code this build does not know (a bug: both sides run the same build) becomes INTERNAL. */
export function fromWireError(wire: WireError): HoldfastError {
  if (wire.issues !== undefined) return new ConfigError(wire.issues);
  const def = errorDefOf(wire.code);
  return new HoldfastError(def !== undefined && isAnswerable(def) ? def : E.INTERNAL, wire.message);
}
