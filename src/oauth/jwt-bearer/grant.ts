/**
 * grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523 §2.1) at /auth/token. Two
 * kinds of assertion share the grant type; which one a request is, is decided before anything is
 * verified, by one rule:
 *
 * 1. The client authenticates (Basic, client_secret or private_key_jwt): the assertion is an
 *    identity assertion grant (ID-JAG, MIMIR_ENABLE_ID_JAG) for that client, and its `typ` must be
 *    oauth-id-jag+jwt. Clients that may: service accounts, and OAuth clients registered
 *    (RFC 7591) as confidential with this grant type in `grant_types`.
 * 2. No client authentication: the assertion is a workload identity token
 *    (MIMIR_WORKLOAD_ISSUERS_FILE). An ID-JAG here is refused: it is only good with its client.
 *
 * The assertion itself is never tried against the other kind's keys, so an ID-JAG cannot pass as
 * a workload token or the reverse.
 */
import { serviceAccountFinder } from '../../cache/index.ts';
import type { Config } from '../../config/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { ID_JAG_TYP, JWT_BEARER_GRANT, peekJwt, typOf } from '../../jwt/assertions.ts';
import { authenticateClient, authenticateOAuthClient, readClientCredentials, type ClientCredentials } from '../token/authenticate-client.ts';
import type { Grant } from '../token/index.ts';
import { idJagGrant } from './id-jag.ts';
import { workloadGrant } from './workload.ts';
import { loadWorkloadIssuers, WorkloadIssuers } from './workload-issuers.ts';

/**
 * The jwt-bearer grant as this configuration serves it, or undefined when neither ID-JAG nor
 * workload issuers are configured. Reads and validates the workload issuers file (ConfigError).
 */
export function jwtBearerGrant(config: Pick<Config, 'authorizationServer'>): Grant | undefined {
  const { idJag, workloadIssuersFile } = config.authorizationServer;
  if (!idJag && !workloadIssuersFile) return undefined;
  const workloads = workloadIssuersFile ? new WorkloadIssuers(loadWorkloadIssuers(workloadIssuersFile)) : undefined;
  return {
    requiresClient: false,
    authenticatesItself: true,
    async handle({ hub, params, request, dpopJkt }) {
      // RFC 7521 §4.1: exactly one assertion, a JWT.
      const assertion = params.assertion;
      if (!assertion) throw new OAuthError('invalid_request', 'The assertion parameter is missing (RFC 7521 §4.1).');
      const jwt = peekJwt(assertion);
      if (!jwt) throw new OAuthError('invalid_grant', 'The assertion is not a JWT.');
      const authorization = Array.isArray(request.headers.authorization) ? request.headers.authorization[0] : request.headers.authorization;
      const creds = readClientCredentials(params, authorization);
      if (creds) {
        const clientId = await authenticateGrantClient(hub, creds);
        if (!idJag) throw new OAuthError('invalid_grant', 'Identity assertion grants (ID-JAG) are not accepted here (MIMIR_ENABLE_ID_JAG=false); workload identity tokens are sent without client authentication.');
        return idJagGrant(hub, params, assertion, jwt, clientId, dpopJkt);
      }
      if (typOf(jwt.header) === ID_JAG_TYP) {
        throw new OAuthError('invalid_client', 'An identity assertion grant is presented by the client it names, which must authenticate.');
      }
      if (!workloads) throw new OAuthError('invalid_grant', 'No workload identity issuers are configured (MIMIR_WORKLOAD_ISSUERS_FILE); an ID-JAG needs client authentication.');
      return workloadGrant(hub, params, assertion, jwt, workloads, dpopJkt);
    },
  };
}

/**
 * The client presenting an ID-JAG: a service account by its secret or key, else a confidential
 * OAuth client (RFC 7591) that registered this grant type (else unauthorized_client).
 */
async function authenticateGrantClient(hub: Hub, creds: ClientCredentials): Promise<string> {
  const find = serviceAccountFinder(hub.caches, hub.serviceAccounts);
  if (await find(creds.clientId)) return (await authenticateClient(hub, creds, find)).clientId;
  const client = await authenticateOAuthClient(hub, creds.clientId, creds).catch(() => {
    throw new OAuthError('invalid_client', 'Client authentication failed.');
  });
  if (client.token_endpoint_auth_method === 'none' || !client.grant_types.includes(JWT_BEARER_GRANT)) {
    throw new OAuthError('unauthorized_client', `The client did not register the ${JWT_BEARER_GRANT} grant.`);
  }
  return client.client_id;
}
