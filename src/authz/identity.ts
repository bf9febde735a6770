/**
 * Who a principal is toward the upstream, told one way everywhere (X-User-ID, remembered consent,
 * MCP session ownership, the audit log's upstream id): an id no two principals share.
 *
 * - a user of the default identity provider (the single provider of the seed's variables, else
 *   the first of the providers file): their `sub` as it is, so Mimir data keyed on it before the
 *   hub keeps working — unless the `sub` holds a `:`, then as for any other provider;
 * - a user of any other provider: `<provider id>:<sub>` (provider ids hold no `:`);
 * - a service account: `service-account:<client id>`; an API key: `api-key:<key id>`, except a
 *   personal key (made on the account page), which is its user, as above
 *   (provider ids `service-account` and `api-key` are reserved).
 */
import { isServiceAccount, type Principal } from '../authn/principal.ts';
import type { Authorizer } from './index.ts';

export const SERVICE_ACCOUNT_PREFIX = 'service-account:';
export const API_KEY_PREFIX = 'api-key:';

/** Who the upstream is told the caller is (X-User-ID, X-User-Email, X-User-Roles; a Mimir JWT's claims). */
export interface UpstreamIdentity {
  id: string;
  email?: string;
  roles: string[];
}

/** A role name Mimir reads as one role (it splits X-User-Roles on commas and trims). */
const ROLE_NAME = /^[A-Za-z0-9._:-]{1,64}$/;

export interface NamedUser {
  sub: string;
  /** The provider's id; undefined: the default provider. */
  provider: string | undefined;
}

export class Identities {
  readonly #defaultProvider: string | undefined;
  readonly #providers: ReadonlySet<string>;
  readonly #authorizer: Authorizer;

  constructor(providerIds: readonly string[], authorizer: Authorizer) {
    this.#defaultProvider = providerIds[0];
    this.#providers = new Set(providerIds);
    this.#authorizer = authorizer;
  }

  /**
   * The one answer to "who is this toward the upstream": its unambiguous id, its email (only a
   * verified one ever reaches a Principal), and the roles it effectively holds — RBAC roles
   * whose every permission lies within its effective permissions, with names Mimir cannot split.
   */
  upstream(p: Principal): UpstreamIdentity {
    const roles = this.#authorizer.upstreamRoles(p).filter((r) => ROLE_NAME.test(r));
    return { id: this.idOf(p), roles, ...(p.email ? { email: p.email } : {}) };
  }

  get defaultProvider(): string | undefined {
    return this.#defaultProvider;
  }

  /**
   * @example
   * identities.idOf({ sub: 'alice', provider: 'partner', ... }) // 'partner:alice'
   */
  idOf(p: Pick<Principal, 'sub' | 'provider' | 'auth_method' | 'client_id' | 'act'>): string {
    // A personal API key (one with an owner, src/api-keys) carries its user's sub and provider: it is
    // that user, always in the user form (with the provider prefix), whatever the sub looks like. A
    // key without an owner is `api-key:<its id>` (src/authn): only that one gets the api-key form.
    if (p.auth_method === 'api-key') {
      const ownerless = p.client_id === undefined ? p.provider === undefined : p.sub === `${API_KEY_PREFIX}${p.client_id}`;
      if (ownerless) return p.sub.startsWith(API_KEY_PREFIX) ? p.sub : `${API_KEY_PREFIX}${p.sub}`;
      return this.userId({ sub: p.sub, provider: p.provider });
    }
    if (isServiceAccount(p)) return `${SERVICE_ACCOUNT_PREFIX}${p.client_id ?? p.sub}`;
    return this.userId({ sub: p.sub, provider: p.provider });
  }

  userId(u: NamedUser): string {
    const provider = u.provider ?? this.#defaultProvider;
    if (provider === this.#defaultProvider && !u.sub.includes(':')) return u.sub;
    return `${provider ?? 'local'}:${u.sub}`;
  }

  /**
   * The user an id names (as a trusted service asserts user context): `userId` read backwards.
   * Null when the id names a service account or an API key (a service never acts as another
   * service), or has a prefix no configured provider has (no user has such an id).
   */
  parse(id: string): NamedUser | null {
    const colon = id.indexOf(':');
    if (colon === -1) return { provider: this.#defaultProvider, sub: id };
    const provider = id.slice(0, colon);
    if (!this.#providers.has(provider)) return null;
    return { provider, sub: id.slice(colon + 1) };
  }
}
