/**
 * "Did you mean": the closest of a set of known words to a misspelt one, for the messages that
 * name a variable, a field or a value the hub does not know (`MIMIR_AUTH_PROT`, `kind: octa`,
 * `clientID`).
 */

/**
 * Edit distance with adjacent transpositions (optimal string alignment), case-insensitive: a
 * swapped pair of letters (`PROT`/`PORT`) or a wrong case (`clientID`/`clientId`) is one slip.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[s.length]![t.length]!;
}

/**
 * The known word closest to `word`, if it is close enough to be a slip (at most a third of its
 * letters, at least one), else undefined. Ties go to the first candidate.
 *
 * @example
 * didYouMean('octa', ['okta', 'auth0', 'azure']) // 'okta'
 * didYouMean('MIMIR_AUTH_PROT', ['MIMIR_AUTH_PORT', 'MIMIR_AUTH_HOST']) // 'MIMIR_AUTH_PORT'
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === word) continue;
    const distance = editDistance(word, c);
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** `; did you mean "x"?` or nothing: the tail of a message about an unknown word. */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const hit = didYouMean(word, candidates);
  return hit === undefined ? '' : `; did you mean "${hit}"?`;
}
