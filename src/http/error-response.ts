import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { HoldfastError } from '../errors.js';

/*
 * The one boundary where a HoldfastError becomes bytes: status and code from its registry entry
 * (errors.ts), `x-holdfast-error` always, `Retry-After` on every 503. Two forms: the client listener's
 * (a body that names status, code and reason, for anyone behind the proxy) and the control listener's (the
 * reason alone, or JSON when asked, for publishers and the CLI, which print it).
 */

/** Retry-After for 503s caused by limits: long enough to matter, short enough that clients come back. */
export const RETRY_AFTER_SECONDS = 1;

export interface ErrorResponseOptions {
  /** End the connection after this response (parse errors, limits). */
  close?: boolean;
}

/** The text every Holdfast-made error carries: status, code, reason. Tests assert the code header. */
function errorBody(err: HoldfastError): string {
  return `${err.httpStatus} ${STATUS_CODES[err.httpStatus] ?? ''}\n${err.code}: ${err.message}\n`;
}

/** The client listener's answer to a HoldfastError on a live ServerResponse. */
export function sendErrorResponse(res: ServerResponse, err: HoldfastError, options: ErrorResponseOptions = {}): void {
  if (res.headersSent) {
    // Too late for a status: cut the connection so the client sees a truncated message, never a clean end.
    res.destroy(err);
    return;
  }
  const body = errorBody(err);
  const headers: string[] = [
    'content-type',
    'text/plain; charset=utf-8',
    'content-length',
    String(Buffer.byteLength(body)),
    'cache-control',
    'no-store',
    'x-holdfast-error',
    err.code,
  ];
  if (err.httpStatus === 503) headers.push('retry-after', String(RETRY_AFTER_SECONDS));
  if (options.close) headers.push('connection', 'close');
  res.writeHead(err.httpStatus, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * The same answer as raw bytes, for the moments there is no ServerResponse: a request Node's parser refused,
 * a header timeout. Always closes the connection.
 */
export function rawErrorResponse(err: HoldfastError): string {
  const body = errorBody(err);
  const lines = [
    `HTTP/1.1 ${err.httpStatus} ${STATUS_CODES[err.httpStatus] ?? 'Error'}`,
    'content-type: text/plain; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    `x-holdfast-error: ${err.code}`,
    'connection: close',
  ];
  if (err.httpStatus === 503) lines.push(`retry-after: ${RETRY_AFTER_SECONDS}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * The control listener's answer (publish, reload, metrics, auth, unknown paths): the reason as the body, or
 * `{"error": code, "message": reason}` when the request accepts JSON (Pushpin's publishers ask for it).
 * `extra` adds the fields a refusal needs (`www-authenticate`, `allow`).
 */
export function sendControlErrorResponse(res: ServerResponse, err: HoldfastError, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const json = (res.req.headers.accept ?? '').includes('application/json');
  const body = json ? `${JSON.stringify({ error: err.code, message: err.message })}\n` : `${err.message}\n`;
  const headers: Record<string, string> = {
    'content-type': json ? 'application/json' : 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-holdfast-error': err.code,
    ...extra,
  };
  if (err.httpStatus === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  res.writeHead(err.httpStatus, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
