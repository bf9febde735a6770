/**
 * The grant types a hub's token endpoint serves, decided once from its configuration: no grant is
 * registered by importing a file, so two hubs with different settings serve different grants.
 */
import type { Config } from '../../config/index.ts';
import { JWT_BEARER_GRANT } from '../../jwt/assertions.ts';
import { authorizationCodeHandler } from '../authorize/grant.ts';
import { jwtBearerGrant } from '../jwt-bearer/grant.ts';
import { refreshTokenHandler } from '../refresh/client.ts';
import { clientCredentialsGrant } from './client-credentials.ts';
import type { Grant } from './index.ts';
import { TOKEN_EXCHANGE_GRANT, tokenExchangeGrant } from './token-exchange.ts';

export type Grants = ReadonlyMap<string, Grant>;

export function createGrants(config: Pick<Config, 'refresh' | 'authorizationServer'>): Grants {
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
  // RFC 7523 §2.1: ID-JAGs (MIMIR_ENABLE_ID_JAG) and workload identity tokens (MIMIR_WORKLOAD_ISSUERS_FILE).
  const jwtBearer = jwtBearerGrant(config);
  if (jwtBearer) grants.set(JWT_BEARER_GRANT, jwtBearer);
  return grants;
}
