/**
 * Channel names as NATS subject tokens. A channel's dots become the subject's token separators, so
 * `scores.eu.live` is `<prefix>.ch.scores.eu.live` in the server's monitoring and a wildcard prefix
 * `scores.` is the NATS wildcard `scores.>`. Only what a subject cannot hold is escaped, as `%` and two hex
 * digits per UTF-8 byte: `%` itself, `*` and `>` (wildcards when a whole token, and refused by some tools
 * anywhere), whitespace and control characters (token separators in the protocol), and anything outside
 * printable ASCII (the server accepts UTF-8, but tools and logs differ, and a readable escape beats a
 * mangled glyph). An empty token (a leading, trailing or doubled dot) is the lone token `%`, which no
 * escaped token can be, since every other `%` is followed by two hex digits.
 */

const EMPTY_TOKEN = '%';

export function encodeToken(token: string): string {
  if (token === '') return EMPTY_TOKEN;
  let out = '';
  for (const ch of token) {
    const code = ch.codePointAt(0)!;
    if (code > 0x20 && code < 0x7f && ch !== '%' && ch !== '*' && ch !== '>') out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Throws on a token no channel encodes to (a foreign subject under our prefix). */
export function decodeToken(token: string): string {
  if (token === EMPTY_TOKEN) return '';
  if (!token.includes('%')) return token;
  if (!/^(?:[^%]|%[0-9A-F]{2})+$/.test(token)) throw new Error(`not an encoded channel token: ${token}`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '%') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      // Unescaped characters are printable ASCII: one byte each.
      bytes.push(token.charCodeAt(i));
    }
  }
  const text = Buffer.from(bytes).toString('utf8');
  // A byte sequence that is not UTF-8 was not made by encodeToken; refuse it rather than decode lossily.
  if (encodeToken(text) !== token) throw new Error(`not an encoded channel token: ${token}`);
  return text;
}

/** The subject tokens of a channel, dot-joined. */
export function encodeChannel(channel: string): string {
  return channel.split('.').map(encodeToken).join('.');
}

export function decodeChannel(subjectTail: string): string {
  return subjectTail.split('.').map(decodeToken).join('.');
}

/**
 * The NATS subscription that covers every channel starting with `prefix`, below `base` (e.g.
 * `holdfast.ch`), and whether it is exact: `scores.` is exactly `base.scores.>`. A prefix that ends inside a
 * token (`sco`, `scores.e`) cannot be said in NATS wildcards: the subscription covers the whole tokens before
 * it (`base.>`, `base.scores.>`) and the receiver filters by the channel name, so it still gets only what
 * it holds, at the cost of messages it drops.
 */
export function prefixSubject(base: string, prefix: string): { subject: string; exact: boolean } {
  const tokens = prefix.split('.');
  const partial = tokens.pop()!;
  const whole = tokens.map(encodeToken);
  return { subject: [base, ...whole, '>'].join('.'), exact: partial === '' };
}
