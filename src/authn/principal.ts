/** Every accepted credential becomes one Principal (DESIGN.md "Credentials accepted"). */
export type AuthMethodUsed = 'api-key' | 'jwt' | 'oauth' | 'session';

export interface Actor {
  sub: string;
  act?: Actor;
}

export interface Principal {
  sub: string;
  email?: string;
  name?: string;
  roles: string[];
  groups: string[];
  /** Granted scopes/permissions carried by the credential (empty: not narrowed by scope). */
  scopes: string[];
  provider?: string;
  tenant?: string;
  auth_method: AuthMethodUsed;
  client_id?: string;
  /** RFC 8693 §4.1: who acts on behalf of `sub`. */
  act?: Actor;
  /** Epoch seconds when the credential stops being valid, if it does. */
  expires_at?: number;
  /** Identifies the credential without revealing it: a jti, key id or session id. */
  credential_id?: string;
  /** RFC 9449: thumbprint of the key the token is bound to. */
  cnf?: { jkt: string };
  /** Session id when the credential belongs to a sign-in session. */
  sid?: string;
  /** Whether this service account may assert user context / exchange tokens. */
  allow_user_context?: boolean;
  allow_token_exchange?: boolean;
}

/** A Principal its caller may change without changing the one it was copied from (a cached one). */
export function copyPrincipal(p: Principal): Principal {
  return { ...p, roles: [...p.roles], groups: [...p.groups], scopes: [...p.scopes] };
}

export function isAdmin(p: Principal): boolean {
  return p.roles.includes('admin');
}
