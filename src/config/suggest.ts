import { distance } from 'fastest-levenshtein';

/**
 * The known name closest to a mistyped one, for "did you mean": the shortest name it begins (`max-conn`), or the
 * nearest by edit distance when the typo is small next to the name's length (two edits, or a third of it).
 */
export function closestName(typed: string, known: readonly string[]): string | undefined {
  const input = typed.toLowerCase();
  if (input.length >= 3) {
    // The shortest completion: `max-conn` is more likely --max-connections than --max-connections-per-client.
    const extended = known.filter((name) => name.toLowerCase().startsWith(input)).sort((a, b) => a.length - b.length);
    if (extended.length > 0) return extended[0];
  }
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const d = distance(input, name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  const allowed = Math.max(2, Math.floor(input.length / 3));
  return bestDistance <= allowed ? best : undefined;
}
