/**
 * Which service accounts stand behind a hub JWT, and whether they still do: the one rule the
 * authenticator (every request) and introspection (RFC 7662 §2.2: `active` is whether the hub
 * would accept the token now) both apply, so neither accepts what the other refuses.
 *
 * A service account's own token (client_credentials) rests on that account; a token it obtained
 * for a user (token exchange, RFC 8693 §4.1) on every actor of its `act` chain. A token stops
 * working when any of them is disabled or deleted, and a token issued before the account was
 * (re)created is not its token.
 */
import type { VerifiedAccessToken } from '../jwt/access-token.ts';
import type { ServiceAccountRecord } from '../service-accounts/index.ts';

/** Actors read from `act`, outermost first: more are never looked up (token exchange bounds chains far below). */
const MAX_ACTORS = 16;

export interface AccountsBehind {
  /** The token is the account's own (client_credentials): it holds the account's roles as they are now. */
  own: boolean;
  /** The accounts to look up, in order (none: a user's token, no account behind it). */
  ids: string[];
}

export function accountsBehind(payload: VerifiedAccessToken['payload']): AccountsBehind {
  const own = payload.act === undefined && typeof payload.client_id === 'string' && payload.sub === payload.client_id;
  return { own, ids: own ? [payload.client_id as string] : actorsOf(payload.act) };
}

/**
 * Whether the accounts found now (`accounts`, in {@link accountsBehind}'s order; null: none under
 * that id) still stand behind the token.
 */
export function accountsStand(accounts: ReadonlyArray<ServiceAccountRecord | null>, payload: VerifiedAccessToken['payload'], own: boolean): boolean {
  for (const account of accounts) {
    if (!account || account.disabled || account.createdAt > payload.iat) return false;
  }
  // Its own token names the account's incarnation: one re-created under the same id is another account.
  return !own || payload.aid === accounts[0]!.instance;
}

/** The service accounts acting in a token (RFC 8693 §4.1 `act`, outermost first), bounded. */
function actorsOf(act: unknown): string[] {
  const out: string[] = [];
  for (let a = act as { sub?: unknown; act?: unknown } | undefined; a && typeof a === 'object' && out.length < MAX_ACTORS; a = a.act as typeof a) {
    if (typeof a.sub === 'string') out.push(a.sub);
  }
  return out;
}
