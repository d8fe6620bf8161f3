/**
 * The Redis bus's names and its one publish script. Names stay readable in `redis-cli` (an operator sees
 * who holds what with `PUBSUB CHANNELS holdfast:ch:*`):
 * - `<prefix>:ch:<channel>`  Pub/Sub channel for live items;
 * - `<prefix>:h:<channel>`   stream: the channel's history (count and age bounded, expires when idle);
 * - `<prefix>:d:<channel>`   sorted set of the ids seen within the de-dup window (score = expiry, ms).
 * The channel is always the whole rest of a name, so a `:` inside a channel name cannot make two names
 * collide. (One `<prefix>:d:<channel>:<id>` key per id could: channel `a:b` id `c` against channel `a`
 * id `b:c`; a set per channel also leaves one key per busy channel instead of one per recent item.)
 */

export function redisNames(prefix: string) {
  const ch = `${prefix}:ch:`;
  return {
    /** Start of every Pub/Sub channel name: what is left after it is the Holdfast channel. */
    channelPrefix: ch,
    channel: (channel: string) => `${ch}${channel}`,
    /** PSUBSCRIBE pattern for every channel starting with `channelPrefix`. */
    pattern: (channelPrefix: string) => `${ch}${escapeGlob(channelPrefix)}*`,
    history: (channel: string) => `${prefix}:h:${channel}`,
    /** Start of every history key: what is left after it is the Holdfast channel. */
    historyPrefix: `${prefix}:h:`,
    /** SCAN pattern for the history of every channel starting with `channelPrefix`. */
    historyPattern: (channelPrefix: string) => `${escapeGlob(`${prefix}:h:${channelPrefix}`)}*`,
    dedup: (channel: string) => `${prefix}:d:${channel}`,
  };
}

export type RedisNames = ReturnType<typeof redisNames>;

/** Redis glob patterns (PSUBSCRIBE) treat `* ? [ ] \` as special; a channel prefix means itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** A stream entry id's milliseconds: Redis's clock when it was added, comparable across streams. */
export function entryTick(entryId: string): number {
  const dash = entryId.indexOf('-');
  return Number(dash < 0 ? entryId : entryId.slice(0, dash));
}

/** Compares two stream entry ids (`ms-seq`) numerically: -1, 0 or 1. */
export function compareEntryIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  if (am.length !== bm.length) return am.length < bm.length ? -1 : 1;
  if (am !== bm) return am < bm ? -1 : 1;
  const x = Number(as);
  const y = Number(bs);
  return x === y ? 0 : x < y ? -1 : 1;
}

/**
 * One item, atomically, so every node's view of a channel is the stream's order (the PUBLISH runs inside
 * the script, so Pub/Sub order is stream order):
 * 1. refuse if the request is past its deadline (in server time): a command held up by a paused Redis
 *    (SIGSTOP) runs when Redis resumes, after the node already answered the publisher 503 "nothing was
 *    published"; the deadline keeps that answer true;
 * 2. de-dup: an id seen within the window is a duplicate (an item that must wait is recorded too, as the
 *    in-process Sequencer does, so a copy of it published on another node meanwhile is a duplicate);
 * 3. prev-id: when the stream's last entry has an id other than prev-id, the item must wait (the node
 *    that took the publish keeps it waiting); no last id (never published, or expired) lets it through;
 * 4. XADD (with the entry before it as `prev`, so a reader that finds it without its predecessor knows
 *    history lost something) with an exact MAXLEN of at least 1 (so the last id survives for sequencing even with a history
 *    of 0 items; history() then says not found), XTRIM by age, PEXPIRE the stream to the age bound so an
 *    idle channel leaves nothing behind (issue 15 found such a per-channel leak in the memory bus);
 * 5. PUBLISH `<node> <entry-id> <item>` and return the receiver count.
 *
 * KEYS: stream, dedup set. ARGV: pubsub channel, node id, item id (or ''), prev-id (or '' for none or
 * no-seq), encoded item, dedup window ms, max entries (>= 1), max age ms, deadline ms (server clock, 0 =
 * none), skip de-dup ('1' on a retry of an item already recorded), skip prev-id check ('1' when its wait
 * ran out).
 *
 * Returns {'published', entry id, receivers, previous last entry id or ''} | {'duplicate'} |
 * {'wait', last item id} | {'late'}.
 */
export const PUBLISH_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[9])
if deadline > 0 and now > deadline then return {'late'} end
local id = ARGV[3]
local window = tonumber(ARGV[6])
if id ~= '' and window > 0 and ARGV[10] ~= '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZSCORE', KEYS[2], id) then return {'duplicate'} end
  redis.call('ZADD', KEYS[2], now + window, id)
  redis.call('PEXPIRE', KEYS[2], window)
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local lastEntry = ''
if last[1] then
  lastEntry = last[1][1]
  if ARGV[4] ~= '' and ARGV[11] ~= '1' then
    local fields = last[1][2]
    local lastId = ''
    for i = 1, #fields, 2 do
      if fields[i] == 'id' then lastId = fields[i + 1] end
    end
    if lastId ~= '' and lastId ~= ARGV[4] then return {'wait', lastId} end
  end
end
local maxAge = tonumber(ARGV[8])
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[7], '*', 'node', ARGV[2], 'id', id, 'prev', lastEntry, 'item', ARGV[5])
redis.call('XTRIM', KEYS[1], 'MINID', now - maxAge)
redis.call('PEXPIRE', KEYS[1], maxAge)
local receivers = redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. entry .. ' ' .. ARGV[5])
return {'published', entry, receivers, lastEntry}
`;

export type PublishScriptReply =
  | ['published', string, number, string]
  | ['duplicate']
  | ['wait', string]
  | ['late'];

/** A stream entry as XRANGE returns it. */
export type StreamEntry = [id: string, fields: string[]];

/** The fields the publish script writes into a stream entry. */
export function entryFields(fields: readonly string[]): { node: string; id: string; prev: string; item: string } {
  const out = { node: '', id: '', prev: '', item: '' };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    if (name === 'node' || name === 'id' || name === 'prev' || name === 'item') out[name] = fields[i + 1]!;
  }
  return out;
}
