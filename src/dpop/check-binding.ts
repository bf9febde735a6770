/**
 * RFC 9449 §7.1 at a protected resource: a DPoP-bound token (`cnf.jkt`) is accepted only as
 * `Authorization: DPoP <token>` with exactly one fresh proof, made by the bound key, for this
 * method and URL, carrying the token's hash. An unbound token is refused under the DPoP scheme,
 * and refused altogether when binding is required (MIMIR_REQUIRE_TOKEN_BINDING).
 */
import type { AuthInput } from '../authn/authenticate.ts';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';
import type { DpopNonces } from './nonce.ts';
import { DPOP_ALGORITHMS, verifyDpopProof } from './verify-proof.ts';

export interface BindingDeps {
  store: Store;
  publicUrl: string;
  requireBinding: boolean;
  now: () => number;
  /** RFC 9449 §9: set when every proof must carry a nonce of the hub (MIMIR_DPOP_REQUIRE_NONCE). */
  nonces?: DpopNonces | undefined;
}

/** Throws a 401 with a `WWW-Authenticate: DPoP` challenge unless the binding holds. */
export async function checkDpopBinding(cnf: { jkt?: unknown } | undefined, input: AuthInput, token: string, deps: BindingDeps): Promise<void> {
  const scheme = schemeOf(input.headers.authorization);
  const jkt = typeof cnf?.jkt === 'string' ? cnf.jkt : undefined;
  if (!jkt) {
    if (scheme === 'dpop') throw challenge('invalid_token', 'This access token is not DPoP-bound; send it as a Bearer token.');
    if (deps.requireBinding) throw challenge('invalid_token', 'This server accepts only DPoP-bound access tokens (RFC 9449).');
    return;
  }
  if (scheme !== 'dpop') throw challenge('invalid_token', 'This access token is DPoP-bound; send it as "Authorization: DPoP <token>" with a DPoP proof.');
  const header = input.headers.dpop;
  // RFC 9449 §4.3 check 1: exactly one DPoP header.
  if (header === undefined || Array.isArray(header) || header.includes(',')) {
    throw challenge('invalid_dpop_proof', 'Exactly one DPoP proof header is required with a DPoP-bound token.');
  }
  if (!input.method || !input.url) throw challenge('invalid_dpop_proof', 'The request method and URL are unknown, so the DPoP proof cannot be checked.');
  const path = pathOf(input.url);
  const proof = await verifyDpopProof(header, {
    method: input.method, urls: [input.url, `${deps.publicUrl}${path}`], accessToken: token, store: deps.store, now: deps.now, nonces: deps.nonces,
  }).catch((e: unknown) => {
    // RFC 9449 §9: the nonce challenge is a 401 with the nonce to use, like any other challenge here.
    if (e instanceof OAuthError && e.error === 'use_dpop_nonce') throw challenge('use_dpop_nonce', e.description, undefined, e.headers);
    if (e instanceof OAuthError) throw challenge('invalid_dpop_proof', e.description, e.detail);
    throw e;
  });
  if (proof.jkt !== jkt) throw challenge('invalid_dpop_proof', 'The DPoP proof was made with a key other than the one this token is bound to.');
  if (proof.nextNonce) input.dpopNonce?.(proof.nextNonce);
}

function schemeOf(authorization: string | string[] | undefined): string {
  const value = Array.isArray(authorization) ? authorization[0] ?? '' : authorization ?? '';
  return value.split(' ', 1)[0]!.toLowerCase();
}

function pathOf(url: string): string {
  try { return new URL(url).pathname; } catch { return ''; }
}

function challenge(error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce', description: string, detail?: string, headers?: Record<string, string>): OAuthError {
  return new OAuthError(error, description, {
    status: 401,
    ...(detail ? { detail } : {}),
    ...(headers ? { headers } : {}),
    challenge: { scheme: 'DPoP', realm: 'mimir', error, error_description: description, algs: DPOP_ALGORITHMS.join(' ') },
  });
}
