/** A refused {@link Decision} as the RFC 6750 §3.1 error every surface sends. */
import { OAuthError } from '../errors.ts';
import type { Decision } from './index.ts';

type Refused = Exclude<Decision, { allowed: true }>;

/**
 * `insufficient_scope` (403) naming the missing permission; a credential bound to another
 * resource (RFC 8707) is `invalid_token` (401): it is not a credential for this one at all.
 */
export function refusal(d: Refused, description?: string): OAuthError {
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
