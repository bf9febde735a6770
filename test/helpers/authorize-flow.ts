/**
 * Drives the hub's authorization server by HTTP the way a browser would: authorize with the
 * session cookie, the consent page, the decision, the redirect back with the code.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { TestHub } from './hub.ts';
import { sessionCookie } from '../oidc/setup.ts';

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function register(hub: TestHub, metadata: Record<string, unknown>): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${hub.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
  return { status: res.status, body: await res.json() as Record<string, any> };
}

export function authorizeUrl(hub: TestHub, params: Record<string, string>): string {
  return `${hub.url}/auth/authorize?${new URLSearchParams(params)}`;
}

/** GET /auth/authorize with the session; when a consent page comes, allow it. Returns the final redirect. */
export async function authorize(hub: TestHub, session: string, params: Record<string, string>, decision: 'allow' | 'deny' = 'allow'): Promise<{ status: number; location: string | null; page?: string }> {
  const res = await fetch(authorizeUrl(hub, params), { redirect: 'manual', headers: { cookie: sessionCookie(hub, session) } });
  if (res.status >= 300 && res.status < 400) return { status: res.status, location: res.headers.get('location') };
  const page = await res.text();
  const id = /name="request" value="([^"]+)"/.exec(page)?.[1];
  if (res.status !== 200 || !id) return { status: res.status, location: null, page };
  const decided = await fetch(`${hub.url}/auth/authorize/decision`, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: sessionCookie(hub, session), 'content-type': 'application/x-www-form-urlencoded', origin: hub.url },
    body: new URLSearchParams({ request: id.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c))), decision }).toString(),
  });
  return { status: decided.status, location: decided.headers.get('location'), page };
}

export async function tokenRequest(hub: TestHub, body: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${hub.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body).toString() });
  return { status: res.status, body: await res.json() as Record<string, any> };
}
