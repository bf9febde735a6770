/**
 * `returnTo` after sign-in: same-origin paths only (an open redirect would hand the login to an
 * attacker, RFC 9700 §4.11). Anything else — absolute URLs, `//host`, `/\host`, control
 * characters — becomes `/`.
 */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return '/';
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return '/';
  try {
    const base = 'http://hub.invalid';
    const u = new URL(value, base);
    if (u.origin !== base) return '/';
    return `${u.pathname}${u.search}${u.hash}`;
  } catch {
    return '/';
  }
}
