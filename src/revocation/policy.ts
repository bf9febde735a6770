/**
 * The lifecycle checks every Mimir JWT passes after its signature (the Authenticator's `policy`
 * slot): not revoked by jti, session/refresh family (sid) or signing key (kid), and, when bound,
 * presented with a valid DPoP proof. Installed by openHub, so library users get it too.
 */
import type { AccessTokenPolicy } from '../authn/authenticate.ts';
import { checkDpopBinding } from '../dpop/check-binding.ts';
import { OAuthError } from '../errors.ts';
import type { DpopNonces } from '../dpop/nonce.ts';
import type { Store } from '../storage/adapter.ts';
import type { RevocationList } from './index.ts';

/** RFC 9449 §7.1: the DPoP authorization scheme (case-insensitive, RFC 9110 §11.1). */
const DPOP_SCHEME = /^dpop(?: |$)/i;

function firstValue(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

export interface PolicyDeps {
  revocations: RevocationList;
  store: Store;
  publicUrl: string;
  requireBinding: boolean;
  now: () => number;
  /** MIMIR_DPOP_REQUIRE_NONCE: proofs must carry a nonce of the hub. */
  nonces?: DpopNonces | undefined;
}

export function accessTokenPolicy(deps: PolicyDeps): AccessTokenPolicy {
  return {
    check(verified, input, token) {
      const p = verified.payload;
      const revoked = deps.revocations.isRevoked({ jti: p.jti, sid: p.sid, fid: p.fid, kid: verified.header.kid });
      if (revoked) {
        const description = 'The access token has been revoked.';
        throw new OAuthError('invalid_token', description, {
          status: 401, detail: `revoked by ${revoked}`, challenge: { realm: 'mimir', error: 'invalid_token', error_description: description },
        });
      }
      // An unbound token sent as Bearer where binding is optional is all checkDpopBinding would
      // accept without a proof; skipping it then keeps the common case synchronous.
      if (p.cnf === undefined && !deps.requireBinding && !DPOP_SCHEME.test(firstValue(input.headers.authorization))) return undefined;
      return checkDpopBinding(p.cnf, input, token, deps);
    },
    // MIMIR_REQUIRE_TOKEN_BINDING is for the hub's own tokens: an IdP's unbound token is still taken as Bearer.
    binding(cnf, input, token) {
      return checkDpopBinding(cnf, input, token, { ...deps, requireBinding: false });
    },
  };
}
