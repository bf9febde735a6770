/** A refused {@link Decision} as the RFC 6750 §3.1 error every surface sends. */
import { OAuthError } from '../errors.ts';
import type { Decision } from './index.ts';

type Refused = Exclude<Decision, { allowed: true }>;

/**
 * `insufficient_scope` (403) naming the missing permission; a credential bound to another
 * resource (RFC 8707) is `invalid_token` (401): it is not a credential for this one at all; a
 * user who authenticated too long ago or too weakly is `insufficient_user_authentication` (401,
 * RFC 9470 §3), the challenge saying what would do (`max_age`, `acr_values`).
 */
export function refusal(d: Refused, description?: string): OAuthError {
  if (d.reason === 'insufficient_user_authentication') {
    const { maxAge, acrValues } = d.required;
    const text = d.unmet === 'max_age'
      ? `This request needs an authentication at most ${maxAge} seconds old; sign in again.`
      : `This request needs an authentication of the class ${(acrValues ?? []).join(' or ')}; sign in again at that level.`;
    const ask = {
      ...(maxAge !== undefined ? { max_age: String(maxAge) } : {}),
      ...(acrValues?.length ? { acr_values: acrValues.join(' ') } : {}),
    };
    return new OAuthError('insufficient_user_authentication', text, {
      extra: ask,
      challenge: { realm: 'mimir', error: 'insufficient_user_authentication', error_description: text, ...ask },
    });
  }
  if (d.reason === 'wrong_resource') {
    const text = 'The access token was issued for another resource of this server.';
    return new OAuthError('invalid_token', text, {
      detail: `token resource ${d.resource.join(' ').slice(0, 200)}`,
      challenge: { realm: 'mimir', error: 'invalid_token', error_description: text },
    });
  }
  const text = description ?? `This request needs the permission "${d.permission}".`;
  return new OAuthError('insufficient_scope', text, {
    extra: { missing_permission: d.permission },
    challenge: { realm: 'mimir', error: 'insufficient_scope', error_description: text, scope: d.permission },
  });
}
