/**
 * Step-up authentication (RFC 9470): how recently (`max_age`) and how strongly (`acr`) the user
 * must have authenticated for an action. One check, used by the one authorization rule (route
 * rules with `maxAge` / `acr`), by the hub's authorization endpoint (`max_age`, `acr_values`) and
 * by the sign-in callback that answers a step-up (so a sign-in that passes there passes here).
 */

/** What an action asks of the user's authentication. */
export interface AuthenticationRequirement {
  /** Seconds since the user last authenticated, at most (RFC 9470 §3 `max_age`). */
  maxAge?: number;
  /** Authentication context classes accepted, any one of them (RFC 9470 §3 `acr_values`). */
  acrValues?: readonly string[];
}

/** When and how the user authenticated (OIDC Core §2 `auth_time`, `acr`), where known. */
export interface AuthenticationFacts {
  auth_time?: number | undefined;
  acr?: string | undefined;
}

/**
 * Seconds of clock difference allowed between the IdP that set `auth_time` and the hub (the
 * leeway the hub's JWT checks allow too).
 */
export const AUTH_TIME_LEEWAY_SECONDS = 5;

/**
 * What of `required` the facts do not meet: `max_age` (no `auth_time`, or one older than
 * `maxAge` seconds), `acr` (no `acr`, or one not listed), or undefined when they meet it all.
 * Unknown is unmet: a credential that does not say when its user authenticated (an API key, a
 * service account) never passes a step-up.
 *
 * @example
 * unmetAuthentication({ auth_time: now - 600 }, { maxAge: 300 }, now) // 'max_age'
 */
export function unmetAuthentication(facts: AuthenticationFacts, required: AuthenticationRequirement, nowSeconds: number): 'max_age' | 'acr' | undefined {
  if (required.maxAge !== undefined) {
    const t = facts.auth_time;
    if (typeof t !== 'number' || !Number.isFinite(t) || nowSeconds - t > required.maxAge + AUTH_TIME_LEEWAY_SECONDS) return 'max_age';
  }
  if (required.acrValues !== undefined && required.acrValues.length > 0) {
    if (typeof facts.acr !== 'string' || !required.acrValues.includes(facts.acr)) return 'acr';
  }
  return undefined;
}

/** Whether a requirement asks anything at all. */
export function requiresAuthentication(r: AuthenticationRequirement | undefined): r is AuthenticationRequirement {
  return r !== undefined && (r.maxAge !== undefined || (r.acrValues !== undefined && r.acrValues.length > 0));
}

/** OIDC Core §3.1.2.1 `acr_values`: space-separated, here bounded (10 values, 200 characters each); null when malformed. */
export function parseAcrValues(value: string): string[] | null {
  const values = value.split(' ');
  if (values.length > 10 || values.some((v) => !/^[\x21-\x7E]{1,200}$/.test(v))) return null;
  return values;
}
