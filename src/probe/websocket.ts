import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { check, formatMs, type CheckResult, type ProbeTimeouts } from './check.js';
import { PROBE_USER_AGENT } from './target.js';

/**
 * Does the URL upgrade to a WebSocket (RFC 6455 §4), answer a ping with a pong carrying the same payload
 * (§5.5.3), echo a message (many endpoints do not: that is no fault), and answer a close frame with one and
 * then end the TCP connection (§7.1.1)? Spoken with `ws`, the client the rest of the project uses.
 */
export async function probeWebSocket(url: string, timeouts: ProbeTimeouts): Promise<CheckResult[]> {
  const ws = new WebSocket(url, { handshakeTimeout: timeouts.timeoutMs, headers: { 'User-Agent': PROBE_USER_AGENT }, autoPong: true });
  const inbox = new WsInbox(ws);
  try {
    const opened = await inbox.opened(timeouts.timeoutMs);
    if (opened !== 'open') {
      return [check('ws.upgrade', 'fail', opened, { upgraded: false }), ...(['ws.ping', 'ws.echo', 'ws.close'] as const).map((id) => check(id, 'skip', 'no WebSocket'))];
    }
    const protocol = ws.protocol === '' ? 'no subprotocol' : `subprotocol ${ws.protocol}`;
    const results = [check('ws.upgrade', 'ok', `101 Switching Protocols, ${protocol}`, { upgraded: true, protocol: ws.protocol })];
    results.push(await pingCheck(ws, inbox, timeouts));
    results.push(await echoCheck(ws, inbox, timeouts));
    results.push(await closeCheck(ws, inbox, timeouts));
    return results;
  } finally {
    ws.terminate();
  }
}

async function pingCheck(ws: WebSocket, inbox: WsInbox, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const payload = `holdfast-probe ${randomBytes(4).toString('hex')}`;
  const sentAt = performance.now();
  ws.ping(payload);
  await inbox.until(() => inbox.pongs.includes(payload) || inbox.closeCode() !== null, timeouts.timeoutMs);
  const measured = { pong: inbox.pongs.includes(payload), pongs: inbox.pongs.length };
  if (measured.pong) return check('ws.ping', 'ok', `pong with the ping's payload in ${formatMs(performance.now() - sentAt)}`, measured);
  if (inbox.pongs.length > 0) return check('ws.ping', 'fail', `a pong came, but not with the ping's payload (RFC 6455 §5.5.3)`, measured);
  return check('ws.ping', 'fail', `no pong within ${formatMs(timeouts.timeoutMs)}${inbox.closeCode() === null ? '' : ` (closed ${inbox.closeCode()})`}: a client's liveness check would give up on it`, measured);
}

async function echoCheck(ws: WebSocket, inbox: WsInbox, timeouts: ProbeTimeouts): Promise<CheckResult> {
  const text = `holdfast-probe ${randomBytes(4).toString('hex')}`;
  const before = inbox.messages.length;
  if (inbox.closeCode() !== null) return check('ws.echo', 'skip', `closed (${inbox.closeCode()}) before the probe could send`, { echoed: false, answers: 0 });
  ws.send(text);
  await inbox.until(() => inbox.messages.slice(before).includes(text) || inbox.closeCode() !== null, timeouts.timeoutMs);
  const answers = inbox.messages.slice(before);
  const measured = { echoed: answers.includes(text), answers: answers.length };
  if (measured.echoed) return check('ws.echo', 'ok', 'a text message came back as sent', measured);
  if (answers.length > 0) return check('ws.echo', 'ok', `not an echo: ${answers.length} other message(s) came back within ${formatMs(timeouts.timeoutMs)}`, measured);
  return check('ws.echo', 'ok', `nothing came back within ${formatMs(timeouts.timeoutMs)} (not an echo endpoint: no fault)`, measured);
}

async function closeCheck(ws: WebSocket, inbox: WsInbox, timeouts: ProbeTimeouts): Promise<CheckResult> {
  if (inbox.closeCode() !== null) {
    return check('ws.close', 'warn', `the server had already closed (${inbox.closeCode()})`, { code: inbox.closeCode(), clean: false });
  }
  ws.close(1000, 'holdfast probe done');
  await inbox.until(() => inbox.closeCode() !== null, timeouts.timeoutMs);
  if (inbox.closeCode() === null) {
    return check('ws.close', 'fail', `no close frame back and the connection still open ${formatMs(timeouts.timeoutMs)} after ours`, { code: null, clean: false });
  }
  const code = inbox.closeCode();
  // ws reports 1006 when the TCP connection ended without a close frame from the other side.
  if (code === 1006) return check('ws.close', 'warn', 'the connection ended without a close frame back (1006)', { code, clean: false });
  return check('ws.close', 'ok', `close frame ${code} back, then the connection ended`, { code, clean: true });
}

/** The events of one WebSocket, kept so a check waits for what it needs and misses nothing that came early. */
class WsInbox {
  readonly messages: string[] = [];
  readonly pongs: string[] = [];
  #closeCode: number | null = null;
  #openOutcome: string | null = null;
  #waiters: (() => void)[] = [];

  constructor(ws: WebSocket) {
    ws.on('open', () => this.#set('open'));
    ws.on('unexpected-response', (_req: unknown, res: IncomingMessage) => {
      this.#set(`no upgrade: answered HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd());
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err: Error) => this.#set(`no upgrade: ${err.message}`));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push(isBinary ? `<binary ${data.length} bytes>` : data.toString('utf8'));
      this.#wake();
    });
    ws.on('pong', (data: Buffer) => {
      this.pongs.push(data.toString('utf8'));
      this.#wake();
    });
    ws.on('close', (code: number) => {
      this.#closeCode = code;
      this.#set('closed before the upgrade');
    });
  }

  /** The close code once the connection is closed (a method: a property would stay narrowed across awaits). */
  closeCode(): number | null {
    return this.#closeCode;
  }

  /** 'open', or why the upgrade did not happen. */
  async opened(timeoutMs: number): Promise<string> {
    await this.until(() => this.#openOutcome !== null, timeoutMs);
    return this.#openOutcome ?? `no upgrade within ${formatMs(timeoutMs)}`;
  }

  async until(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition() && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - performance.now());
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #set(outcome: string): void {
    this.#openOutcome ??= outcome;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
