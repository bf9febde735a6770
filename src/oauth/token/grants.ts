/**
 * The grant types a hub's token endpoint serves, decided once from its configuration: no grant is
 * registered by importing a file, so two hubs with different settings serve different grants.
 */
import type { Config } from '../../config/index.ts';
import { authorizationCodeHandler } from '../authorize/grant.ts';
import { refreshTokenHandler } from '../refresh/client.ts';
import { clientCredentialsGrant } from './client-credentials.ts';
import type { Grant } from './index.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from './token-exchange.ts';

export type Grants = ReadonlyMap<string, Grant>;

export function createGrants(config: Pick<Config, 'refresh'>): Grants {
  const grants = new Map<string, Grant>([
    // RFC 6749 §4.4: service accounts.
    ['client_credentials', { requiresClient: true, handle: ({ hub, params, client, dpopJkt }) => clientCredentialsGrant(hub, params, client!, dpopJkt ? { cnf: { jkt: dpopJkt } } : {}) }],
    // RFC 6749 §4.1.3: OAuth clients of the authorization server authenticate themselves.
    ['authorization_code', { requiresClient: false, authenticatesItself: true, handle: authorizationCodeHandler }],
  ]);
  // RFC 6749 §6: client authentication is optional (public clients).
  if (config.refresh.enabled) grants.set('refresh_token', { requiresClient: false, authenticatesItself: true, handle: refreshTokenHandler });
  // RFC 8693: service accounts created with --allow-token-exchange.
  grants.set(TOKEN_EXCHANGE_GRANT, { requiresClient: true, handle: ({ hub, params, client }) => tokenExchangeGrant(hub, params, client!) });
  return grants;
}
