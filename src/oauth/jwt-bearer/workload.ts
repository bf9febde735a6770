/**
 * Workload identity federation (RFC 7523 §2.1): a workload presents the JWT its platform gave it
 * (a Kubernetes projected service-account token, a SPIFFE JWT-SVID, a cloud workload identity
 * token) with no client secret, and gets a token for the service account its issuer, audience and
 * subject map to in MIMIR_WORKLOAD_ISSUERS_FILE — that account's `sub`/`client_id`, roles and
 * scope rules, exactly as client_credentials would give it. No secret to leak, rotate or store.
 *
 * Checks (RFC 7523 §3), each refusal `invalid_grant`: `typ` absent or JWT (an access token, an
 * ID-JAG or a DPoP proof of the issuer is not a workload identity); `iss` a configured issuer,
 * signature by its JWKS with an asymmetric algorithm (never `none` or HS*); `exp` (and `nbf` if
 * present) within the clock skew; `aud` holding the entry's audience and `sub` matching its
 * subject pattern; the mapped service account existing and enabled now; single use — by `jti`,
 * or, for a token without one, by the token itself (either way a replay is refused until `exp`).
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { serviceAccountFinder } from '../../cache/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import { ASSERTION_ALGORITHMS, CLOCK_SKEW_SECONDS, typOf, useOnce, type UnverifiedJwt } from '../../jwt/assertions.ts';
import { describe } from '../../oidc/discovery.ts';
import { clientCredentialsGrant } from '../token/client-credentials.ts';
import type { TokenResponse } from '../token/index.ts';
import type { Params } from '../token/parse-body.ts';
import type { WorkloadIssuers } from './workload-issuers.ts';

const refuse = (description: string, detail?: string) => new OAuthError('invalid_grant', description, detail === undefined ? {} : { detail });

export async function workloadGrant(hub: Hub, params: Params, assertion: string, jwt: UnverifiedJwt, issuers: WorkloadIssuers, dpopJkt: string | undefined): Promise<TokenResponse> {
  checkTyp(jwt);
  const iss = jwt.claims.iss;
  if (typeof iss !== 'string' || !issuers.knows(iss)) throw refuse('The assertion was not issued by a configured workload issuer.');
  const claims = await verifyAssertion(hub, assertion, iss, issuers);
  const aud = typeof claims.aud === 'string' ? [claims.aud] : claims.aud ?? [];
  const entry = issuers.match(iss, aud, claims.sub!);
  if (!entry) throw refuse('No workload issuer entry accepts the assertion\'s audience and subject.', `iss ${iss}, sub ${claims.sub!.slice(0, 200)}`);
  // RFC 7521 §4.1: a client_id sent along must name the client the grant is for.
  if (params.client_id !== undefined && params.client_id !== entry.serviceAccount) throw refuse('The assertion is for another client than client_id names.');
  const account = await serviceAccountFinder(hub.caches, hub.serviceAccounts)(entry.serviceAccount);
  if (!account || account.disabled) throw refuse('The service account this workload maps to does not exist or is disabled.', `service account ${entry.serviceAccount}`);
  const nowSeconds = Math.floor(hub.now() / 1000);
  if (!(await useOnce(hub.store, 'grant', iss, typeof claims.jti === 'string' ? claims.jti : undefined, assertion, claims.exp!, nowSeconds))) {
    throw refuse('The assertion was used before (each workload token is good for one token request).');
  }
  const result = await clientCredentialsGrant(hub, params, account, dpopJkt ? { cnf: { jkt: dpopJkt } } : {});
  return { ...result, audit: { ...result.audit, client: account.clientId, assertion_issuer: iss, assertion_subject: claims.sub!.slice(0, 200) } };
}

/** RFC 8725 §3.11: only an untyped or plain JWT is a workload identity token here. */
function checkTyp(jwt: UnverifiedJwt): void {
  const typ = typOf(jwt.header);
  if (typ !== undefined && typ !== 'jwt') throw refuse('The assertion\'s typ says it is not a workload identity token.', `typ ${typ.slice(0, 50)}`);
}

async function verifyAssertion(hub: Hub, assertion: string, iss: string, issuers: WorkloadIssuers): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(assertion, issuers.keySet(iss), {
      issuer: iss,
      algorithms: [...ASSERTION_ALGORITHMS],
      requiredClaims: ['iss', 'sub', 'aud', 'exp'],
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(hub.now()),
    });
    return payload;
  } catch (e) {
    if (e instanceof errors.JWKSTimeout || (e instanceof TypeError && /fetch failed/.test(e.message))) {
      throw new OAuthError('temporarily_unavailable', 'The workload issuer\'s keys cannot be fetched right now; try again shortly.', { detail: describe(e) });
    }
    throw refuse(
      e instanceof errors.JWTExpired ? 'The assertion has expired.' : 'The assertion is invalid.',
      `${iss}: ${e instanceof errors.JOSEError ? e.code : describe(e)}${e instanceof errors.JWTClaimValidationFailed ? ` (${e.claim})` : ''}`,
    );
  }
}
