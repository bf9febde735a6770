/**
 * The lifecycle checks every Mimir JWT passes after its signature (the Authenticator's `policy`
 * slot): not revoked by jti, session/refresh family (sid) or signing key (kid), and, when bound,
 * presented with a valid DPoP proof. Installed by openHub, so library users get it too.
 */
import type { AccessTokenPolicy } from '../authn/authenticate.ts';
import { checkDpopBinding } from '../dpop/check-binding.ts';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';
import type { RevocationList } from './index.ts';

export interface PolicyDeps {
  revocations: RevocationList;
  store: Store;
  publicUrl: string;
  requireBinding: boolean;
  now: () => number;
}

export function accessTokenPolicy(deps: PolicyDeps): AccessTokenPolicy {
  return {
    async check(verified, input, token) {
      const p = verified.payload;
      const revoked = deps.revocations.isRevoked({ jti: p.jti, sid: p.sid, kid: verified.header.kid });
      if (revoked) {
        const description = 'The access token has been revoked.';
        throw new OAuthError('invalid_token', description, {
          status: 401, detail: `revoked by ${revoked}`, challenge: { realm: 'mimir', error: 'invalid_token', error_description: description },
        });
      }
      await checkDpopBinding(p.cnf, input, token, deps);
    },
  };
}
