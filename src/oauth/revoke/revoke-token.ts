/**
 * RFC 7009 token revocation for Mimir access tokens (by `jti`, until their `exp`), refresh tokens
 * (the whole family, and through `sid` the access tokens minted from it) and API keys.
 * §2.2: an unknown, invalid or already expired token is answered like a revoked one.
 * §2.1: a confidential client must authenticate and may revoke only its own tokens; an admin may
 * revoke anything; a token of a public client is its own proof of possession, and a public client
 * that names itself may revoke only tokens issued to it.
 */
import { looksLikeApiKey } from '../../api-keys/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { verifyAccessToken } from '../../jwt/access-token.ts';
import { isServiceAccount } from '../../authn/principal.ts';
import { isAdminCaller, type Caller } from './authenticate-caller.ts';

export type RevokedTokenType = 'access_token' | 'refresh_token' | 'api_key';

export interface RevokeOutcome {
  /** What was revoked, named without the token itself; null when nothing live matched. */
  revoked: { type: RevokedTokenType; id: string; client?: string } | null;
}

const MAX_TOKEN_BYTES = 8192;

export async function revokeToken(hub: Hub, token: string | undefined, caller: Caller, path = hub.config.revocation.endpoint): Promise<RevokeOutcome> {
  if (!token) throw new OAuthError('invalid_request', 'The token parameter is missing.');
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) return { revoked: null };

  if (looksLikeApiKey(token)) {
    const record = await hub.apiKeys.verify(token);
    if (!record) return { revoked: null };
    // Holding the whole key proves possession: anyone who finds a leaked key may kill it.
    await hub.apiKeys.revoke(record.id);
    return { revoked: { type: 'api_key', id: record.id } };
  }

  if (token.split('.').length === 3) {
    const verified = await verifyAccessToken(token, hub.keys, { issuer: hub.config.jwt.issuer, audiences: hub.audiences, now: hub.now }).catch(() => null);
    if (!verified) return { revoked: null };
    const p = verified.payload;
    await authorize(hub, caller, path, p.client_id, p.sub);
    await hub.revocations.revoke('jti', p.jti, p.exp);
    return { revoked: { type: 'access_token', id: p.jti, client: p.client_id } };
  }

  const refresh = await hub.refreshTokens.inspect(token);
  if (!refresh || refresh.family.revokedAt !== undefined) return { revoked: null };
  await authorize(hub, caller, path, refresh.grant.clientId, refresh.grant.sub);
  await hub.refreshTokens.revokeFamily(refresh.family.familyId, 'revoked');
  return { revoked: { type: 'refresh_token', id: refresh.family.familyId, client: refresh.grant.clientId } };
}

async function authorize(hub: Hub, caller: Caller, path: string, tokenClientId: string | undefined, tokenSub: string): Promise<void> {
  if (isAdminCaller(hub, caller, path)) return;
  const refuse = () => new OAuthError('unauthorized_client', 'The token was not issued to this client.');
  if (caller.kind === 'client' || caller.kind === 'oauth_client') {
    if (caller.clientId !== tokenClientId) throw refuse();
    return;
  }
  // §2.1: a public client naming itself may revoke only its own tokens.
  if (caller.kind === 'anonymous' && caller.clientId !== undefined && caller.clientId !== tokenClientId) throw refuse();
  if (caller.kind === 'principal') {
    const p = caller.principal;
    // The token's user (through that client, or a credential of no client), or the client itself
    // (its own token): another user's credential for the same client is not the client's authentication.
    if (p.sub === tokenSub && (p.client_id === undefined || p.client_id === tokenClientId)) return;
    if (p.client_id === tokenClientId && isServiceAccount(p)) return;
  }
  if (tokenClientId && await isConfidential(hub, tokenClientId)) {
    throw new OAuthError('invalid_client', 'The token belongs to a confidential client, which must authenticate to revoke it.', { status: 401 });
  }
}

/** A service account, or an OAuth client registered with a secret. */
async function isConfidential(hub: Hub, clientId: string): Promise<boolean> {
  if (await hub.serviceAccounts.get(clientId)) return true;
  if (/^https?:\/\//.test(clientId)) return false; // metadata-document clients are public: never fetch here
  const client = await hub.clients.get(clientId).catch(() => null);
  return client !== null && client.token_endpoint_auth_method !== 'none';
}
