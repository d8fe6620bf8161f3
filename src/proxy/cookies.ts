/**
 * Cookie header parsing for the few cookies Holdfast itself reads (stickiness, hashing). RFC 6265 §5.4: a
 * client sends one Cookie field of `name=value` pairs separated by `; `; HTTP/2 gateways may split it into
 * several fields, so every field is read.
 */

/** The value of cookie `name` in a flat raw header list, or undefined. */
export function cookieValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const field = rawHeaders[i]!;
    if (field.length !== 6 || field.toLowerCase() !== 'cookie') continue;
    for (const pair of rawHeaders[i + 1]!.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/**
 * The header list without cookie `name` (HAProxy `indirect`: the backend never sees Holdfast's cookie). A
 * Cookie field left empty is dropped; other cookies pass untouched.
 */
export function withoutCookie(headers: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const field = headers[i]!;
    const value = headers[i + 1]!;
    if (field.length !== 6 || field.toLowerCase() !== 'cookie' || !value.includes(name)) {
      out.push(field, value);
      continue;
    }
    const kept = value
      .split(';')
      .filter((pair) => {
        const eq = pair.indexOf('=');
        return (eq < 0 ? pair : pair.slice(0, eq)).trim() !== name;
      })
      .map((pair) => pair.trim())
      .filter((pair) => pair !== '');
    if (kept.length > 0) out.push(field, kept.join('; '));
  }
  return out;
}
