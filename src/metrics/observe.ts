/**
 * What the HTTP edge reports after authenticating a request: the authentication counter and
 * latency histogram, per-credential request counts, and the audit events "API key used" and
 * "service account used".
 */
import type { Principal } from '../authn/principal.ts';
import type { Hub } from '../hub.ts';

export interface ObservedRequest {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
  id?: string;
}

/** `outcome` is the Principal, or the error the authenticator threw. */
export function observeAuthentication(hub: Hub, req: ObservedRequest, outcome: Principal | unknown, startedAtMs: number): void {
  const seconds = (performance.now() - startedAtMs) / 1000;
  const principal = isPrincipal(outcome) ? outcome : undefined;
  hub.metrics.authenticated(principal ? principal.auth_method : attemptedMethod(req.headers), principal !== undefined, seconds);
  if (!principal) return;
  if (principal.auth_method === 'api-key' && principal.credential_id) {
    hub.metrics.countRequest('api_key', principal.credential_id);
    hub.audit.record({ type: 'api_key_used', outcome: 'success', principal, client: principal.credential_id, ip: req.ip, request_id: req.id });
  } else if (principal.auth_method === 'jwt' && principal.client_id && principal.sub === principal.client_id && !principal.act) {
    hub.metrics.countRequest('service_account', principal.client_id);
    hub.audit.record({ type: 'service_account_used', outcome: 'success', principal, client: principal.client_id, jti: principal.credential_id, ip: req.ip, request_id: req.id });
  }
}

function isPrincipal(v: unknown): v is Principal {
  return typeof v === 'object' && v !== null && typeof (v as Principal).sub === 'string' && typeof (v as Principal).auth_method === 'string';
}

function attemptedMethod(headers: ObservedRequest['headers']): string {
  if (headers['x-api-key'] !== undefined) return 'api-key';
  const auth = headers.authorization;
  const scheme = (Array.isArray(auth) ? auth[0] : auth)?.split(' ', 1)[0]?.toLowerCase();
  if (scheme === 'bearer' || scheme === 'dpop') return 'jwt';
  if (headers.cookie !== undefined) return 'session';
  return 'none';
}
