import type { ServerResponse } from 'node:http';
import type { DashboardSnapshot } from './dashboard-snapshot.js';

export interface DashboardFeedOptions {
  /** Reads the numbers now (a registry, or the whole machine's through the primary). */
  snapshot(): Promise<DashboardSnapshot>;
  /** Between snapshots. @default 1000 */
  intervalMs?: number;
  /** Between SSE comments that keep proxies and the browser from timing the stream out. @default 15000 */
  heartbeatMs?: number;
}

interface Viewer {
  readonly res: ServerResponse;
  /** False when the viewer has no publish key: channel names are left out (they are what the key protects). */
  readonly channelNames: boolean;
}

/** A viewer this far behind (a stalled tab) skips snapshots instead of buffering them without bound. */
const MAX_BUFFERED_BYTES = 64 * 1024;

/**
 * `GET /dashboard/events`: Server-Sent Events held by the control listener itself, one `snapshot` event a
 * second to every viewer. One timer for all viewers, running only while someone watches; each snapshot is
 * built once and written to all of them.
 */
export class DashboardFeed {
  readonly #options: Required<DashboardFeedOptions>;
  readonly #viewers = new Set<Viewer>();
  #timer: NodeJS.Timeout | null = null;
  #building = false;
  #lastHeartbeatMs = 0;

  constructor(options: DashboardFeedOptions) {
    this.#options = { intervalMs: 1_000, heartbeatMs: 15_000, ...options };
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  open(res: ServerResponse, channelNames: boolean): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // The page reconnects on its own after a restart; a proxy in front of the control port must not buffer.
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const viewer: Viewer = { res, channelNames };
    this.#viewers.add(viewer);
    res.on('close', () => {
      this.#viewers.delete(viewer);
      if (this.#viewers.size === 0) this.#stop();
    });
    // The first snapshot at once, not a second later: the page has numbers as soon as it loads.
    void this.#send([viewer]);
    if (this.#timer === null) {
      this.#lastHeartbeatMs = Date.now();
      this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs);
      this.#timer.unref();
    }
  }

  /** Ends every viewer's stream (the control listener is closing). */
  close(): void {
    this.#stop();
    for (const viewer of this.#viewers) viewer.res.end();
    this.#viewers.clear();
  }

  #tick(): void {
    const now = Date.now();
    if (now - this.#lastHeartbeatMs >= this.#options.heartbeatMs) {
      this.#lastHeartbeatMs = now;
      for (const viewer of this.#viewers) viewer.res.write(':\n\n');
    }
    // A snapshot still being built (a slow cluster answer) is not started twice.
    if (!this.#building) void this.#send([...this.#viewers]);
  }

  async #send(viewers: readonly Viewer[]): Promise<void> {
    this.#building = true;
    let event: { full: string; redacted: string } | { error: string };
    try {
      const snapshot = await this.#options.snapshot();
      event = {
        full: sseEvent('snapshot', snapshot),
        redacted: sseEvent('snapshot', { ...snapshot, channels: { ...snapshot.channels, top: null } }),
      };
    } catch (err) {
      event = { error: sseEvent('unavailable', { reason: (err as Error).message }) };
    } finally {
      this.#building = false;
    }
    for (const viewer of viewers) {
      if (viewer.res.destroyed || viewer.res.writableLength > MAX_BUFFERED_BYTES) continue;
      viewer.res.write('error' in event ? event.error : viewer.channelNames ? event.full : event.redacted);
    }
  }

  #stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

function sseEvent(type: string, data: unknown): string {
  // JSON has no raw newlines, so one data line carries it.
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}
