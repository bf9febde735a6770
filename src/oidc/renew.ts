/**
 * IdP token renewal on Mimir refresh (issue 4: "refresh also renews the IdP tokens with the
 * stored IdP refresh token when they are due"). Runs as a refresh hook, after the Mimir refresh
 * token was used, so only the one winner of a refresh race gets here. An IdP `invalid_grant`
 * (RFC 6749 §5.2: the IdP refresh token is revoked or expired — the user's IdP session is over)
 * ends the hub session and fails the refresh with `invalid_grant`; the refresh grant then revokes
 * the family and answers 401, so the client signs in again instead of looping. An unreachable
 * IdP does not end anything: the renewal is tried again at the next refresh.
 */
import type { Logger } from 'pino';
import * as client from 'openid-client';
import { OAuthError } from '../errors.ts';
import type { Sessions } from '../sessions/sessions.ts';
import type { Store } from '../storage/adapter.ts';
import { describe, type ProviderDirectory } from './discovery.ts';
import { withoutIdToken } from './multi-tenant.ts';

/** Renew an IdP access token this long before it expires. */
export const RENEW_BEFORE_SECONDS = 60;
const LOCK = 'idp_renewal_lock';
const LOCK_SECONDS = 30;

export interface RenewDeps {
  sessions: Sessions;
  providers: ProviderDirectory;
  store: Store;
  now: () => number;
  log: Logger;
}

export type RenewOutcome = 'renewed' | 'not_due' | 'no_session' | 'busy' | 'idp_unavailable';

/** Renews the IdP tokens of session `sid` (signed in through `providerId`) when they are due. */
export async function renewIdpTokens(d: RenewDeps, sid: string, providerId: string | undefined): Promise<RenewOutcome> {
  // Signed out, or ended by the IdP: no grant of this login may mint tokens any more.
  if (await d.sessions.wasEnded(sid)) throw new OAuthError('invalid_grant', 'The sign-in session has ended.', { detail: 'session ended' });
  const tokens = await d.sessions.idpTokens(sid);
  if (!tokens) return 'no_session';
  const now = Math.floor(d.now() / 1000);
  if (!tokens.refreshToken || tokens.accessTokenExpiresAt === undefined || tokens.accessTokenExpiresAt - now > RENEW_BEFORE_SECONDS) return 'not_due';
  const p = providerId ? d.providers.get(providerId) : undefined;
  if (!p) return 'not_due';
  // One renewal per session at a time: IdPs that rotate refresh tokens would see the loser's
  // attempt as reuse and end the IdP session.
  if (!(await d.store.insert(LOCK, sid, { at: now }, LOCK_SECONDS))) return 'busy';
  try {
    const base = await d.providers.configuration(p);
    // Multi-tenant ID tokens cannot pass openid-client's fixed-issuer check; a renewal needs none.
    const config = p.issuerTemplate ? withoutIdToken(p, base).config : base;
    let fresh: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
    try {
      fresh = await client.refreshTokenGrant(config, tokens.refreshToken);
    } catch (e) {
      if (e instanceof client.ResponseBodyError && e.error === 'invalid_grant') {
        await d.sessions.end(sid);
        throw new OAuthError('invalid_grant', `${p.name} ended the sign-in; sign in again.`, { detail: `idp ${p.id} refused the refresh token (invalid_grant)` });
      }
      d.log.warn({ provider: p.id, sid, err: describe(e) }, 'renewing IdP tokens failed; will retry at the next refresh');
      return 'idp_unavailable';
    }
    const expiresIn = fresh.expiresIn();
    await d.sessions.saveIdpTokens(sid, {
      accessToken: fresh.access_token,
      // RFC 6749 §6: the IdP may or may not rotate its refresh token.
      refreshToken: fresh.refresh_token ?? tokens.refreshToken,
      ...(expiresIn !== undefined ? { accessTokenExpiresAt: Math.floor(d.now() / 1000) + expiresIn } : {}),
    });
    return 'renewed';
  } finally {
    await d.store.destroy(LOCK, sid).catch(() => false);
  }
}
