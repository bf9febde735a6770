/**
 * CSRF defence for cookie-authenticated requests that change state: they must come from the
 * hub's own origin. `Sec-Fetch-Site` (Fetch Metadata) when the browser sends it, else `Origin`
 * (RFC 6454 §7), else `Referer`; a state-changing request with none of them is refused.
 */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isStateChanging(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

export function comesFromOwnOrigin(headers: Record<string, string | string[] | undefined>, publicUrl: string): boolean {
  const one = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const own = new URL(publicUrl).origin;
  const site = one('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = one('origin');
  if (origin !== undefined) return origin === own;
  const referer = one('referer');
  if (referer !== undefined) {
    try {
      return new URL(referer).origin === own;
    } catch {
      return false;
    }
  }
  return false;
}
