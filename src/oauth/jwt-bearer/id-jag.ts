/**
 * Enterprise-managed authorization: an Identity Assertion JWT Authorization Grant (ID-JAG,
 * draft-ietf-oauth-identity-assertion-authz-grant; the MCP "enterprise-managed authorization"
 * extension, SEP-990) presented at /auth/token as an RFC 7523 jwt-bearer grant by the client it
 * names. The user's enterprise IdP — one of the hub's configured providers — vouches for the user
 * and the client; the hub issues that user an access token for the named resource, as if the
 * user had signed in and approved the client, and never more than the user's roles allow.
 *
 * Checks (§4.3 of the draft, RFC 7521 §5.2, RFC 7523 §3), each refusal `invalid_grant` unless
 * said: `typ` oauth-id-jag+jwt; `iss` a configured provider's issuer, signature by that
 * provider's JWKS (asymmetric algorithms only); `aud` the hub's issuer alone; `client_id` the
 * authenticated client; `sub`, `jti`, `exp`, `iat` and `resource` present; `resource` the hub's
 * (a `resource` parameter outside it is `invalid_target`); `jti` used once, remembered until `exp`. The user's identity
 * comes from the assertion's claims through the provider's claim mapping (src/oidc/claims.ts), so
 * the upstream X-User-ID is the one the same user gets by signing in.
 */
import { errors, jwtVerify, type JWTPayload } from 'jose';
import type { Principal } from '../../authn/principal.ts';
import { isPermission } from '../../authz/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Hub } from '../../hub.ts';
import {
  ASSERTION_ALGORITHMS, audienceIsIssuer, CLOCK_SKEW_SECONDS, ID_JAG_TYP, typOf, useOnce, type UnverifiedJwt,
} from '../../jwt/assertions.ts';
import { acceptedIssuers, checkProviderRules, issuerMatches, mapClaims } from '../../oidc/claims.ts';
import { describe } from '../../oidc/discovery.ts';
import type { ProviderSettings } from '../../oidc/providers.ts';
import { classifyScope, parseScope } from '../token/scope.ts';
import type { TokenResponse } from '../token/index.ts';
import type { Params } from '../token/parse-body.ts';

/** Claims an ID-JAG must carry (draft §3; `resource` because the hub issues for named resources only). */
const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'client_id', 'jti', 'exp', 'iat', 'resource'];

const refuse = (description: string, detail?: string) => new OAuthError('invalid_grant', description, detail === undefined ? {} : { detail });

export async function idJagGrant(hub: Hub, params: Params, assertion: string, jwt: UnverifiedJwt, clientId: string, dpopJkt: string | undefined): Promise<TokenResponse> {
  checkTyp(jwt);
  const { provider, claims } = await verifyAssertion(hub, assertion, jwt);
  checkProviderClaims(provider, claims);
  if (!audienceIsIssuer(claims.aud, hub.config.jwt.issuer)) throw refuse('The assertion is not for this authorization server (aud must be its issuer).');
  // Draft §4.3: the client_id claim identifies the client that authenticated.
  if (claims.client_id !== clientId) throw refuse('The assertion was issued to another client.');
  const resources = grantedResources(hub, claims.resource, params.resource);
  let user: Principal;
  try {
    user = mapClaims(provider, claims, 'oauth').principal;
  } catch (e) {
    // A grant's refusal (RFC 7521 §5.2), whatever the claim mapping calls it.
    throw refuse(e instanceof OAuthError ? e.description : 'The assertion\'s claims cannot be read.');
  }
  // RFC 7800 / RFC 9449: an assertion the IdP bound to the client's DPoP key is redeemed only with a
  // proof by that key, for a token bound to it; never for an unbound one.
  if (user.cnf && user.cnf.jkt !== dpopJkt) throw refuse('The assertion is bound to a DPoP key: send the token request with a DPoP proof made with it.');
  // A user whose sub is the client's id would read as that client's own token (a service account).
  if (user.sub === clientId) throw refuse('The assertion\'s subject is the client itself.');
  const scopes = grantedScopes(hub, user, claims.scope, params.scope);
  const nowSeconds = Math.floor(hub.now() / 1000);
  if (!(await useOnce(hub.store, 'grant', claims.iss!, claims.jti, assertion, claims.exp!, nowSeconds))) {
    throw refuse('The assertion was used before (its jti is single use).');
  }

  const scope = scopes.join(' ');
  const issued = await hub.signer.issue({
    sub: user.sub, client_id: clientId, scope, roles: user.roles, groups: user.groups,
    aud: resources.length === 1 ? resources[0]! : resources, auth_method: 'id_jag', provider: provider.id,
    ...(user.email ? { email: user.email } : {}), ...(user.name ? { name: user.name } : {}),
    ...(user.tenant ? { tenant: user.tenant } : {}),
    ...(dpopJkt ? { cnf: { jkt: dpopJkt } } : {}),
  }, hub.config.jwt.accessTokenLifetime);
  return {
    body: { access_token: issued.token, token_type: dpopJkt ? 'DPoP' : 'Bearer', expires_in: issued.expiresIn, scope },
    audit: {
      jti: issued.jti, sub: user.sub, client: clientId, provider: provider.id, resource: resources.join(' '),
      assertion_issuer: claims.iss, assertion_jti: claims.jti,
    },
  };
}

/** Draft §3 and RFC 8725 §3.11: an ID-JAG says what it is; any other JWT is not one. */
function checkTyp(jwt: UnverifiedJwt): void {
  if (typOf(jwt.header) !== ID_JAG_TYP) throw refuse(`The assertion is not an identity assertion grant (its typ must be ${ID_JAG_TYP}).`);
}

/**
 * The provider whose issuer the assertion names verifies it with its own keys; a token of
 * provider A never passes as B's. Unreachable keys are 503 temporarily_unavailable.
 */
async function verifyAssertion(hub: Hub, assertion: string, jwt: UnverifiedJwt): Promise<{ provider: ProviderSettings; claims: JWTPayload }> {
  const iss = jwt.claims.iss;
  const candidates = typeof iss === 'string' ? hub.providers.all.filter((p) => issuerMatches(p, iss)) : [];
  if (candidates.length === 0) throw refuse('The assertion was issued by an identity provider this hub does not trust.');
  let last: OAuthError | undefined;
  for (const provider of candidates) {
    try {
      const { payload } = await jwtVerify(assertion, await providerKeys(hub, provider), {
        // Multi-tenant: `iss` matched the template; checkProviderRules ties it to the tenant.
        issuer: provider.issuerTemplate ? iss! : acceptedIssuers(provider),
        typ: ID_JAG_TYP,
        algorithms: [...ASSERTION_ALGORITHMS],
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(hub.now()),
      });
      return { provider, claims: payload };
    } catch (e) {
      if (e instanceof OAuthError && e.status >= 500) throw e;
      if (e instanceof errors.JWKSTimeout || (e instanceof TypeError && /fetch failed/.test(e.message))) {
        throw new OAuthError('temporarily_unavailable', `The keys of ${provider.name} cannot be fetched right now; try again shortly.`, { detail: describe(e) });
      }
      last = e instanceof OAuthError ? e : refuse(
        e instanceof errors.JWTExpired ? 'The assertion has expired.' : 'The assertion is invalid.',
        `${provider.id}: ${e instanceof errors.JOSEError ? e.code : describe(e)}${e instanceof errors.JWTClaimValidationFailed ? ` (${e.claim})` : ''}`,
      );
    }
  }
  throw last!;
}

/** The provider's JWKS: configured, else from its discovery document. */
async function providerKeys(hub: Hub, p: ProviderSettings) {
  let uri = p.endpoints.jwks;
  if (!uri) {
    const config = await hub.providers.configuration(p).catch((e: unknown) => {
      throw new OAuthError('temporarily_unavailable', `${p.name} cannot be reached to verify the assertion; try again shortly.`, { detail: describe(e) });
    });
    uri = config.serverMetadata().jwks_uri;
  }
  if (!uri) throw refuse(`${p.name} publishes no keys (JWKS).`);
  return hub.providers.keySet(uri);
}

/** The provider kind's own rules (Google hd, Azure tenants, ...), as for its ID tokens. */
function checkProviderClaims(p: ProviderSettings, claims: JWTPayload): void {
  try {
    checkProviderRules(p, claims, 'id');
  } catch (e) {
    if (e instanceof OAuthError) throw refuse(e.description, e.detail ?? e.error);
    throw e;
  }
}

/**
 * RFC 8707: the token's audience. The assertion's `resource` (one URI or several, draft §3) must
 * all be the hub's; a `resource` parameter narrows to one of them. Compared without a trailing
 * slash, as the authorization endpoint does.
 */
function grantedResources(hub: Hub, claim: unknown, asked: string | undefined): string[] {
  const list = typeof claim === 'string' ? [claim] : Array.isArray(claim) && claim.length > 0 && claim.every((r) => typeof r === 'string') ? claim as string[] : undefined;
  if (!list) throw refuse('The assertion names no resource.');
  const named = [...new Set(list.map((r) => r.replace(/\/$/, '')))];
  const unknown = named.filter((r) => !hub.audiences.includes(r));
  // The claim is part of the grant: a grant for resources this server does not serve is an invalid
  // grant (RFC 6749 §5.2), as the MCP conformance suite's SEP-990 authorization server answers.
  // invalid_target (RFC 8707 §2) is for the resource *parameter*, below.
  if (unknown.length) throw refuse(`The assertion is for resources the hub does not serve: ${unknown.slice(0, 3).map((u) => JSON.stringify(u.slice(0, 100))).join(', ')}.`);
  if (asked === undefined) return named;
  const one = asked.replace(/\/$/, '');
  if (!named.includes(one)) throw new OAuthError('invalid_target', 'The resource is not one the assertion grants.');
  return [one];
}

/**
 * RFC 6749 §3.3 and draft §4.3: what is asked — the `scope` parameter, which may only narrow the
 * assertion's `scope`, else the assertion's, else nothing in particular — intersected with the
 * user's permissions by the one rule (src/authz). Nothing asked: everything the user holds.
 * A `scope` parameter naming a scope the hub does not know is invalid_scope (as at every grant);
 * scopes of the assertion that are no Mimir permission grant nothing; an empty result is invalid_scope (an empty
 * scope would narrow nothing).
 */
function grantedScopes(hub: Hub, user: Principal, claim: unknown, param: string | undefined): string[] {
  if (claim !== undefined && typeof claim !== 'string') throw refuse('The assertion\'s scope is not a string.');
  const granted = claim?.split(' ').filter(Boolean);
  const asked = param?.split(' ').filter(Boolean);
  // The client's own request follows the hub's scope rule: an unknown scope is invalid_scope.
  if (asked?.length) classifyScope(parseScope(param), hub.authorizer, true);
  if (granted?.length && asked?.length) {
    const wider = asked.filter((s) => !granted.includes(s));
    if (wider.length) throw new OAuthError('invalid_scope', `The scope ${wider.slice(0, 5).join(', ').slice(0, 200)} is beyond what the assertion grants.`);
  }
  const wanted = asked?.length ? asked : granted;
  const roles = { roles: user.roles, auth_method: 'jwt' as const };
  if (!wanted?.length) {
    const held = hub.authorizer.permissions({ ...roles, scopes: [] });
    if (!held.length) throw new OAuthError('invalid_scope', 'The user holds no permission here.');
    return held;
  }
  const permissions = [...new Set(wanted.filter(isPermission))];
  const result = permissions.length ? hub.authorizer.permissions({ ...roles, scopes: permissions }) : [];
  if (!result.length) throw new OAuthError('invalid_scope', 'None of the requested scopes is a permission the user holds.');
  return result;
}
