/**
 * RFC 8707 resource indicators at the token endpoint: the resource a token is asked for becomes
 * its audience, and only resources of this hub are served (`hub.audiences`: its general audience,
 * its origin root, `/mcp`); anything else is `invalid_target` (§2).
 */
import { OAuthError } from '../../errors.ts';

/**
 * The resource as the token's `aud`: an absolute URI without a fragment (§2) that the hub
 * serves, compared with one trailing slash ignored (as the authorization endpoint does).
 */
export function requestedResource(audiences: readonly string[], value: string): string {
  let url: URL | undefined;
  try { url = new URL(value); } catch { /* refused below */ }
  if (!url || url.hash || value.includes('#')) throw new OAuthError('invalid_target', 'The resource must be an absolute URI without a fragment (RFC 8707 §2).');
  const trimmed = value.replace(/\/$/, '');
  const found = audiences.find((a) => a === value || a === trimmed);
  if (found === undefined) throw new OAuthError('invalid_target', `The hub does not issue tokens for "${value.slice(0, 200)}".`);
  return found;
}
