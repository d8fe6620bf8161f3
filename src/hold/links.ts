import { E, HoldfastError, UpstreamError } from '../errors.js';
import type { PickRequest } from '../proxy/balancer.js';
import type { GroupSender } from '../proxy/group-sender.js';
import type { Routing } from '../proxy/routing.js';
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
  readonly #routing: Routing;
  readonly #sender: GroupSender;
  readonly #signer: GripSigner;

  constructor(routing: Routing, sender: GroupSender, signer: GripSigner) {
    this.#routing = routing;
    this.#sender = sender;
    this.#signer = signer;
  }

  /** The backend's answer, or a HoldfastError: no route, the group's refusal (503), a failed backend (502/504). */
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
    const route = this.#routing.route(headerOf(base.upstreamHeaders, 'host'), base.target);
    if (route === null) throw new HoldfastError(E.NO_ROUTE, `no route for the request that gave link ${path}`);
    const headers: string[] = [];
    for (let i = 0; i < base.upstreamHeaders.length; i += 2) {
      if (!NOT_REPEATED.has(base.upstreamHeaders[i]!.toLowerCase())) headers.push(base.upstreamHeaders[i]!, base.upstreamHeaders[i + 1]!);
    }
    headers.push('grip-sig', this.#signer.token(), 'grip-feature', GRIP_FEATURES, ...extraHeaders);
    // Admitted, balanced, health-counted and retried as a proxied request is (GroupSender).
    const result = await this.#sender.request(route.group, {
      method,
      path,
      headers,
      body: method === 'POST' ? EMPTY : null,
      pickRequest: linkPickRequest(base.upstreamHeaders),
      maxBodyBytes: () => MAX_LINK_BODY_BYTES,
    });
    if (!result.ok) throw result.error;
    const { response } = result;
    if (response.oversized) {
      throw new UpstreamError(E.UPSTREAM_BAD_RESPONSE, response.backend.name, `answered link ${path} with more than ${MAX_LINK_BODY_BYTES} bytes`);
    }
    return { status: response.status, reason: response.reason, headers: response.headers, body: response.body };
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * What the group's balancer sees of a link fetch: the original request's upstream headers (hashing on a
 * header finds the same server), and the client's address, which is the last X-Forwarded-For hop we added.
 */
function linkPickRequest(upstreamHeaders: readonly string[]): PickRequest {
  const forwardedFor = headerOf(upstreamHeaders, 'x-forwarded-for') ?? '';
  const clientAddress = forwardedFor.slice(forwardedFor.lastIndexOf(',') + 1).trim();
  return { req: { rawHeaders: upstreamHeaders }, owner: { clientAddress } };
}

function headerOf(headers: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === lowerName) return headers[i + 1];
  return undefined;
}
