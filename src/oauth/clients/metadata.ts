/**
 * OAuth client metadata (RFC 7591 §2), validated the same way whether it arrives by dynamic
 * registration or in a client ID metadata document.
 */
import type { JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { OAuthError } from '../../errors.ts';
import { JWT_BEARER_GRANT, jwksUriProblem, publicJwksProblem } from '../../jwt/assertions.ts';

export interface OAuthClient {
  client_id: string;
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
  scope?: string;
  /** private_key_jwt (RFC 7591 §2): the client's public keys, inline or by reference (never both). */
  jwks?: JSONWebKeySet;
  jwks_uri?: string;
  /** OIDC Dynamic Client Registration §2 (MCP 2026-07-28 asks clients to send it). */
  application_type?: ApplicationType;
  /** Hash of the client secret, for confidential clients registered dynamically. */
  client_secret_hash?: string;
  /** How the hub learned of it. */
  source: 'dynamic' | 'metadata-document' | 'builtin';
  client_id_issued_at?: number;
  software_id?: string;
  software_version?: string;
}

const url = z.string().max(2000);

export type ApplicationType = 'native' | 'web';

export const clientMetadataSchema = z.object({
  // Required for the redirect-based grant only (checked below): a jwt-bearer client has none.
  redirect_uris: z.array(url).max(20).optional(),
  client_name: z.string().max(200).optional(),
  client_uri: url.optional(),
  logo_uri: url.optional(),
  grant_types: z.array(z.string().max(100)).max(10).optional(),
  response_types: z.array(z.string().max(100)).max(10).optional(),
  token_endpoint_auth_method: z.string().max(100).optional(),
  scope: z.string().max(2000).optional(),
  application_type: z.string().max(20).optional(),
  software_id: z.string().max(200).optional(),
  software_version: z.string().max(100).optional(),
  client_id: z.string().max(2000).optional(),
  jwks: z.unknown().optional(),
  jwks_uri: url.optional(),
}).loose();

// RFC 7523 §2.1: the jwt-bearer grant (an ID-JAG, for confidential clients only; see checkClientKeys).
const SUPPORTED_GRANTS = new Set(['authorization_code', 'refresh_token', JWT_BEARER_GRANT]);
const AUTH_METHODS = new Set(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt']);

function isLoopbackHost(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === '[::1]' || hostname === 'localhost';
}

/**
 * Redirect URIs: https, or http on a loopback host (RFC 8252 §7.3); no fragments (RFC 6749 §3.1.2);
 * no credentials in the URL.
 */
export function checkRedirectUri(value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new OAuthError('invalid_redirect_uri', `The redirect URI ${JSON.stringify(value.slice(0, 200))} is not an absolute URL.`);
  }
  if (u.hash || value.includes('#')) throw new OAuthError('invalid_redirect_uri', 'A redirect URI must not contain a fragment (RFC 6749 §3.1.2).');
  if (u.username || u.password) throw new OAuthError('invalid_redirect_uri', 'A redirect URI must not contain credentials.');
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && isLoopbackHost(u.hostname)) return u;
  throw new OAuthError('invalid_redirect_uri', `The redirect URI ${JSON.stringify(value.slice(0, 200))} must use https, or http on a loopback address (127.0.0.1, [::1], localhost) per RFC 8252 §7.3.`);
}

/**
 * OIDC Dynamic Client Registration §2 `application_type`, as the MCP 2026-07-28 revision asks
 * clients to send it. A `web` client registers only https redirect URIs on hosts that are not
 * loopback (§2: web clients must not use localhost; a web app cannot listen there). A `native`
 * one is held to the hub's general rule (https, or http on a loopback host): §2 would allow it
 * loopback and private-use schemes only, but VS Code registers as native with
 * `https://vscode.dev/redirect` beside its loopback URIs, and the hub takes no private-use
 * schemes at all. Omitted (`derive`: dynamic registration), it is `native` when a redirect URI is
 * loopback — what CLI and desktop MCP clients register, a web client could not — else `web`. A
 * client ID metadata document that does not say is not held to either.
 */
function checkApplicationType(value: string | undefined, uris: readonly URL[], derive: boolean): ApplicationType | undefined {
  if (value !== undefined && value !== 'native' && value !== 'web') {
    throw new OAuthError('invalid_client_metadata', `application_type: "${value.slice(0, 20)}" is not native or web.`);
  }
  const loopback = (u: URL) => isLoopbackHost(u.hostname);
  const type = value ?? (derive ? (uris.some(loopback) ? 'native' : 'web') : undefined);
  if (type === 'web' && uris.some((u) => loopback(u) || u.protocol !== 'https:')) {
    throw new OAuthError('invalid_redirect_uri', 'A web client (application_type "web") may register only https redirect URIs on a host that is not loopback (OpenID Connect Dynamic Client Registration §2); a CLI or desktop client registers as "native".');
  }
  return type;
}

export function validateClientMetadata(input: unknown, options: { deriveApplicationType?: boolean } = {}): z.infer<typeof clientMetadataSchema> & { redirect_uris: string[]; grant_types: string[]; response_types: string[]; token_endpoint_auth_method: OAuthClient['token_endpoint_auth_method']; application_type?: ApplicationType } {
  const parsed = clientMetadataSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || 'metadata';
    throw new OAuthError(field.startsWith('redirect_uris') ? 'invalid_redirect_uri' : 'invalid_client_metadata', `${field}: ${issue.message}`);
  }
  const m = parsed.data;
  const redirect_uris = m.redirect_uris ?? [];
  const uris = redirect_uris.map(checkRedirectUri);
  const applicationType = checkApplicationType(m.application_type, uris, options.deriveApplicationType ?? false);
  const grant_types = m.grant_types ?? ['authorization_code'];
  if (grant_types.includes('authorization_code') && redirect_uris.length === 0) {
    throw new OAuthError('invalid_redirect_uri', 'redirect_uris: at least one redirect URI is required');
  }
  const unsupported = grant_types.filter((g) => !SUPPORTED_GRANTS.has(g));
  if (unsupported.length) throw new OAuthError('invalid_client_metadata', `grant_types: ${unsupported.join(', ')} not supported; use authorization_code, refresh_token or ${JWT_BEARER_GRANT}.`);
  const response_types = m.response_types ?? ['code'];
  if (response_types.some((r) => r !== 'code')) throw new OAuthError('invalid_client_metadata', 'response_types: only "code" is supported.');
  const method = m.token_endpoint_auth_method ?? 'client_secret_basic';
  if (!AUTH_METHODS.has(method)) throw new OAuthError('invalid_client_metadata', `token_endpoint_auth_method: "${method.slice(0, 50)}" is not one of none, client_secret_basic, client_secret_post, private_key_jwt.`);
  checkClientKeys(m, method, grant_types);
  for (const field of ['client_uri', 'logo_uri'] as const) {
    const v = m[field];
    if (v !== undefined && !/^https:\/\//.test(v)) throw new OAuthError('invalid_client_metadata', `${field}: must be an https URL.`);
  }
  const { application_type: _given, ...rest } = m;
  return { ...rest, redirect_uris, grant_types, response_types, token_endpoint_auth_method: method as OAuthClient['token_endpoint_auth_method'], ...(applicationType ? { application_type: applicationType } : {}) };
}

/**
 * private_key_jwt (RFC 7523 §2.2) needs the client's keys: `jwks` (public signature keys) or a
 * `jwks_uri` (https; http on loopback, fetched only in development mode), never both (RFC 7591
 * §2). Keys of other clients are not kept. The jwt-bearer grant is for confidential clients only
 * (draft-ietf-oauth-identity-assertion-authz-grant §7.1): a public client may not list it.
 */
function checkClientKeys(m: { jwks?: unknown; jwks_uri?: string | undefined }, method: string, grants: readonly string[]): void {
  if (grants.includes(JWT_BEARER_GRANT) && method === 'none') {
    throw new OAuthError('invalid_client_metadata', `grant_types: ${JWT_BEARER_GRANT} is for confidential clients; register a token_endpoint_auth_method other than none.`);
  }
  if (m.jwks !== undefined && m.jwks_uri !== undefined) throw new OAuthError('invalid_client_metadata', 'jwks and jwks_uri must not both be present (RFC 7591 §2).');
  if (method !== 'private_key_jwt') {
    if (m.jwks !== undefined || m.jwks_uri !== undefined) throw new OAuthError('invalid_client_metadata', 'jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt.');
    return;
  }
  if (m.jwks === undefined && m.jwks_uri === undefined) throw new OAuthError('invalid_client_metadata', 'private_key_jwt needs the client\'s keys: jwks or jwks_uri.');
  const problem = m.jwks !== undefined ? publicJwksProblem(m.jwks) : jwksUriProblem(m.jwks_uri!);
  if (problem) throw new OAuthError('invalid_client_metadata', `${m.jwks !== undefined ? 'jwks' : 'jwks_uri'}: ${problem}.`);
}

/**
 * RFC 6749 §3.1.2.3 exact match, except the port of a loopback http redirect (RFC 8252 §7.3).
 * Only the port: a presented URI with userinfo or a fragment never matches by the loopback rule.
 */
export function redirectUriMatches(registered: readonly string[], presented: string): boolean {
  let p: URL;
  try {
    p = new URL(presented);
  } catch {
    return false;
  }
  const onlyPortMayDiffer = !p.username && !p.password && !p.hash && !presented.includes('#');
  return registered.some((r) => {
    if (r === presented) return true;
    let reg: URL;
    try {
      reg = new URL(r);
    } catch {
      return false;
    }
    if (!onlyPortMayDiffer || reg.protocol !== 'http:' || p.protocol !== 'http:' || !isLoopbackHost(reg.hostname) || reg.hostname !== p.hostname) return false;
    return reg.pathname === p.pathname && reg.search === p.search;
  });
}
