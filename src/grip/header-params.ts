/**
 * The parameter syntax GRIP headers share (`Grip-Channel: a; prev-id=3, b; filter=skip-self`): a comma list
 * of items, each a first token followed by `; key=value` parameters, values optionally quoted. Commas and
 * semicolons inside quotes do not split.
 */
export interface HeaderItem {
  /** The first token, e.g. the channel name or `<url>`; for `Grip-Set-Meta` items it is `key=value`. */
  value: string;
  /** The first token's own value when it was written `key=value` (Grip-Set-Meta). */
  firstParamValue: string | undefined;
  params: [string, string][];
}

/**
 * `firstIsParam`: the first token is itself `key=value` (Grip-Set-Meta, Pushpin's ParseAllParameters mode).
 * Otherwise it is taken whole, so `</feed?page=2>` and a channel named `a=b` keep their `=`.
 */
export function parseHeaderItems(header: string, splitCommas = true, firstIsParam = false): HeaderItem[] | null {
  const items: HeaderItem[] = [];
  for (const part of splitOutsideQuotes(header, splitCommas ? ',' : '')) {
    if (part.trim() === '') continue;
    const pieces = splitOutsideQuotes(part, ';');
    const first = pieces[0]!.trim();
    if (first === '') return null;
    const eq = firstIsParam ? first.indexOf('=') : -1;
    const firstParamValue = eq >= 0 ? unquote(first.slice(eq + 1).trim()) : undefined;
    if (firstParamValue === null) return null;
    const item: HeaderItem = { value: eq >= 0 ? first.slice(0, eq).trim() : first, firstParamValue, params: [] };
    for (const piece of pieces.slice(1)) {
      const p = piece.trim();
      if (p === '') continue;
      const at = p.indexOf('=');
      const key = (at >= 0 ? p.slice(0, at) : p).trim().toLowerCase();
      const value = at >= 0 ? unquote(p.slice(at + 1).trim()) : '';
      if (value === null || key === '') return null;
      item.params.push([key, value]);
    }
    items.push(item);
  }
  return items;
}

export function param(item: HeaderItem, key: string): string | undefined {
  for (const [k, v] of item.params) if (k === key) return v;
  return undefined;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  if (separator === '') return [text];
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** A quoted-string per RFC 9110 §5.6.4, or a bare token; null for an unterminated quote. */
function unquote(value: string): string | null {
  if (!value.startsWith('"')) return value;
  if (value.length < 2 || !value.endsWith('"')) return null;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}
