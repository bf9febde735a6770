/**
 * `mimir-auth providers check`: the seed's troubleshooting section, automated. For each
 * provider: is discovery reachable and consistent, is the JWKS reachable and usable, does the
 * configuration fit (redirect URI, audience, secret) — said in words a person can act on.
 */
import * as client from 'openid-client';
import type { Config } from '../config/index.ts';
import { tokeninfoEndpoint } from './bearer.ts';
import { describe, requestOptions } from './discovery.ts';
import { loadProviders, type ProviderSettings } from './providers.ts';

export interface ProviderReport {
  id: string;
  issuer: string;
  ok: boolean;
  problems: string[];
  notes: string[];
}

export async function checkProviders(config: Config, fetchImpl: typeof fetch = fetch): Promise<ProviderReport[]> {
  const providers = loadProviders(config);
  return Promise.all(providers.map((p) => checkOne(p, fetchImpl)));
}

async function checkOne(p: ProviderSettings, fetchImpl: typeof fetch): Promise<ProviderReport> {
  const problems: string[] = [];
  const notes: string[] = [];
  let jwksUri = p.endpoints.jwks;
  try {
    const c = await client.discovery(new URL(p.issuer), p.clientId, undefined, undefined, requestOptions(p, 5));
    const m = c.serverMetadata();
    notes.push(`discovery OK at ${p.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    jwksUri ??= m.jwks_uri;
    if (!m.code_challenge_methods_supported?.includes('S256')) notes.push('the IdP does not advertise PKCE S256; sign-in still sends it');
    if (!m.end_session_endpoint) notes.push('no end_session_endpoint: sign-out ends only the hub session');
    if (p.kind === 'google' && p.opaqueTokens === 'userinfo' && !tokeninfoEndpoint(p, m)) {
      notes.push('no tokeninfo endpoint (endpoints.tokeninfo, MIMIR_OAUTH_TOKENINFO_ENDPOINT, or tokeninfo_endpoint in discovery): opaque access tokens of this IdP are refused');
    }
  } catch (e) {
    problems.push(`discovery failed for issuer ${p.issuer}: ${describe(e)}. Check MIMIR_OAUTH_ISSUER (it must equal the "issuer" the IdP publishes, ` +
      `${p.kind === 'auth0' ? 'with its trailing slash' : 'exactly'}) and that this host can reach it.`);
  }
  if (jwksUri) {
    try {
      const res = await fetchImpl(jwksUri, { signal: AbortSignal.timeout(5000) });
      const body = res.ok ? await res.json() as { keys?: unknown[] } : undefined;
      if (!res.ok) problems.push(`the JWKS at ${jwksUri} answered HTTP ${res.status}`);
      else if (!Array.isArray(body?.keys) || body.keys.length === 0) problems.push(`the JWKS at ${jwksUri} has no keys`);
      else notes.push(`JWKS OK: ${body.keys.length} key(s)`);
    } catch (e) {
      problems.push(`the JWKS at ${jwksUri} cannot be fetched: ${describe(e)}`);
    }
  }
  if (!p.clientSecret) notes.push('no client secret: the hub signs in as a public client (PKCE only)');
  if (!p.audience) notes.push('no audience (MIMIR_OAUTH_AUDIENCE): access tokens of this IdP are not accepted as bearer tokens');
  notes.push(`redirect URI ${p.redirectUri} must be registered at the IdP exactly as written`);
  return { id: p.id, issuer: p.issuer, ok: problems.length === 0, problems, notes };
}

export function formatReports(reports: readonly ProviderReport[]): string {
  if (reports.length === 0) return 'No identity provider is configured (MIMIR_AUTH_PROVIDER or MIMIR_AUTH_PROVIDERS_FILE).';
  return reports.map((r) => [
    `${r.ok ? 'OK  ' : 'FAIL'} ${r.id} (${r.issuer})`,
    ...r.problems.map((x) => `  ✗ ${x}`),
    ...r.notes.map((x) => `  · ${x}`),
  ].join('\n')).join('\n');
}
