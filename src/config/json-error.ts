/**
 * Where a configuration file's JSON goes wrong, said the same way whatever V8's message: "at
 * position 42 (line 3, column 14)". V8 gives the position for most syntax errors but not for an
 * unexpected token at the start of a value (`"admin": x`) nor for a truncated file, and its
 * message then quotes a slice of the text instead.
 */

/**
 * The problem and its position, from the SyntaxError JSON.parse threw on `text`.
 *
 * @example
 * try { JSON.parse(text) } catch (e) { describeJsonError(text, e) } // "Unexpected token '}' at position 9 (line 1, column 10)"
 */
export function describeJsonError(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const given = /^(.*?) (in|after) JSON at position (\d+)/s.exec(message);
  if (given) return `${given[1]}${given[2] === 'after' ? ' after the JSON' : ''} ${at(text, Number(given[3]))}`;
  if (/Unexpected end of JSON input/.test(message)) return `the JSON ends too early ${at(text, text.length)}`;
  const token = /^(Unexpected token '.+?')/s.exec(message);
  return `${token ? token[1] : 'invalid JSON'} ${at(text, firstBadOffset(text))}`;
}

/**
 * The offset of the first character JSON.parse cannot accept: the shortest prefix whose error is
 * something other than "ends too early" ends with it. Prefixes of a text are parsed left to right,
 * so once one fails for another reason every longer one does (binary search).
 */
function firstBadOffset(text: string): number {
  const bad = (n: number) => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (e) {
      // A prefix cut in the middle fails at its end ("ends too early", or at position n).
      const m = (e as Error).message;
      const position = /JSON at position (\d+)/.exec(m);
      return position ? Number(position[1]) < n : !/Unexpected end of JSON input/.test(m);
    }
  };
  let lo = 1;
  let hi = text.length;
  if (!bad(hi)) return hi;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bad(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}

function at(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `at position ${offset} (line ${line}, column ${column})`;
}
