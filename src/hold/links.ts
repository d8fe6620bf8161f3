import type { Forwarder } from '../proxy/forwarder.js';
import type { GripSigner } from '../grip/sig.js';
import { GRIP_FEATURES } from '../grip/features.js';

/** A backend answer to a link fetch, buffered (links carry small bodies: a page of a stream). */
export interface LinkResponse {
  status: number;
  reason: string;
  headers: string[];
  body: Buffer;
}

const MAX_LINK_BODY_BYTES = 1_048_576;
/** Headers of the original request a link fetch must not repeat. */
const NOT_REPEATED = new Set(['content-length', 'content-type', 'grip-sig', 'grip-feature', 'grip-last']);

/**
 * Requests a Grip-Link (next or gone) from the backends, the way the original request went: through its
 * route's group and the pooled connections, with the original client's headers, a fresh Grip-Sig and
 * `Grip-Last` when recovering. Links are resolved against the original request; an absolute link is
 * used for its path only, so a backend's instruction can never make us call an arbitrary host.
 */
export class LinkFetcher {
  readonly #forwarder: Forwarder;
  readonly #signer: GripSigner;

  constructor(forwarder: Forwarder, signer: GripSigner) {
    this.#forwarder = forwarder;
    this.#signer = signer;
  }

  async fetch(
    link: string,
    base: { target: string; upstreamTarget: string; upstreamHeaders: readonly string[] },
    method: 'GET' | 'POST',
    extraHeaders: readonly string[] = [],
  ): Promise<LinkResponse> {
    // The link goes to the group that served the original request (routed as the client asked for it), and
    // resolves against the target that backend saw.
    const resolved = new URL(link, new URL(base.upstreamTarget, 'http://holdfast.invalid'));
    const path = `${resolved.pathname}${resolved.search}`;
    const route = this.#forwarder.route(headerOf(base.upstreamHeaders, 'host'), base.target);
    if (route === null) throw new Error(`no route for the request that gave link ${path}`);
    const headers: string[] = [];
    for (let i = 0; i < base.upstreamHeaders.length; i += 2) {
      if (!NOT_REPEATED.has(base.upstreamHeaders[i]!.toLowerCase())) headers.push(base.upstreamHeaders[i]!, base.upstreamHeaders[i + 1]!);
    }
    headers.push('grip-sig', this.#signer.token(), 'grip-feature', GRIP_FEATURES, ...extraHeaders);
    const backend = route.group.balancer.pick(Date.now(), null, undefined, false);
    if (backend === null) throw new Error(`no backend available for link ${path}`);
    backend.requestCounter.inc();
    const response = await backend.pool.request({
      path,
      method,
      headers,
      body: method === 'POST' ? '' : null,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_LINK_BODY_BYTES) {
        response.body.destroy();
        throw new Error(`link ${path} answered more than ${MAX_LINK_BODY_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const flat: string[] = [];
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) flat.push(name, v);
    }
    return { status: response.statusCode, reason: '', headers: flat, body: Buffer.concat(chunks) };
  }
}

function headerOf(headers: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lowerName) return headers[i + 1];
  return undefined;
}
