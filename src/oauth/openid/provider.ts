/**
 * The hub as an OpenID Provider for its own clients (OIDC Core 1.0, Discovery 1.0): which
 * configurations can be one, where its UserInfo endpoint is, who a user is to its clients, and
 * the audience of an access token that may read it.
 */
import type { Config } from '../../config/index.ts';

/** OIDC Core §5.3. */
export const USERINFO_PATH = '/auth/userinfo';

/**
 * Whether the hub can be an OpenID Provider: its ID tokens must verify with its published keys.
 * With HS256 nothing is published (the secret is shared with nobody), so no client could check
 * an ID token: the hub then offers no `openid` scope and no OpenID discovery document.
 */
export function isOpenIdProvider(config: Pick<Config, 'jwt'>): boolean {
  return config.jwt.algorithm !== 'HS256';
}

export function userinfoUrl(config: Pick<Config, 'publicUrl'>): string {
  return `${config.publicUrl}${USERINFO_PATH}`;
}

/**
 * The `aud` of an access token: its RFC 8707 resource, and, when the grant includes `openid`,
 * the UserInfo endpoint too (OIDC Core §5.3.1: the token obtained from an OpenID request is
 * what the client sends there). Without it a token for `/mcp` could not read the user's claims.
 */
export function accessTokenAudience(config: Pick<Config, 'publicUrl'>, resource: string, scopes: readonly string[]): string | string[] {
  return scopes.includes('openid') ? [resource, userinfoUrl(config)] : resource;
}
