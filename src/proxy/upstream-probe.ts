/**
 * What the hub can learn of the upstream Mimir without a credential and without changing
 * anything: whether it answers, whether its own security is on (its `GET /auth/status`), and
 * whether the GET routes of the route table exist there. Used at start (a warning) and by
 * `mimir-auth doctor`.
 */
import type { RouteRule } from '../rbac/routes.ts';

export type UpstreamSecurity = 'on' | 'off' | 'unknown';

const TIMEOUT_MS = 3000;

/**
 * Mimir's `GET /auth/status`: security off answers `{authenticated: true, securityEnabled: false}`;
 * on, without its cookie, `{authenticated: false}`.
 */
export async function upstreamSecurity(upstreamUrl: string, fetchImpl: typeof fetch = fetch): Promise<UpstreamSecurity> {
  try {
    const res = await fetchImpl(new URL('/auth/status', upstreamUrl), { signal: AbortSignal.timeout(TIMEOUT_MS), headers: { accept: 'application/json' } });
    if (!res.ok) return 'unknown';
    const body = await res.json() as { securityEnabled?: unknown; authenticated?: unknown };
    if (body.securityEnabled === false) return 'off';
    if (body.securityEnabled === true || body.authenticated === false) return 'on';
    return 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface RouteProbe {
  rule: RouteRule;
  path: string;
  /** found: the upstream has the route; missing: it answered as for no route; error: no answer. */
  outcome: 'found' | 'missing' | 'error';
  status?: number;
}

/**
 * Probes the table's GET routes with HEAD-less GETs carrying no credential (reads change nothing):
 * a route the upstream lacks answers as an unknown path of its does (compared with a made-up one).
 * Other methods are not probed: the request could change data.
 */
export async function probeRoutes(upstreamUrl: string, rules: readonly RouteRule[], fetchImpl: typeof fetch = fetch): Promise<RouteProbe[]> {
  const get = async (path: string) => {
    const res = await fetchImpl(new URL(path, upstreamUrl), { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' });
    const text = await res.text().catch(() => '');
    return { status: res.status, text };
  };
  const unknown = await get('/api/mimir-auth-hub-no-such-route').catch(() => undefined);
  const out: RouteProbe[] = [];
  for (const rule of rules) {
    if (!rule.method.split('|').includes('GET') || rule.path.includes('**')) continue;
    const path = rule.path === '/upstream/health' ? '/health' : rule.path.replace(/\*/g, 'x1');
    try {
      const answer = await get(path);
      const missing = unknown !== undefined && answer.status === unknown.status && answer.status === 404 && /Cannot GET/.test(answer.text);
      out.push({ rule, path, outcome: missing ? 'missing' : 'found', status: answer.status });
    } catch {
      out.push({ rule, path, outcome: 'error' });
    }
  }
  return out;
}
