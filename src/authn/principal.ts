/**
 * Every accepted credential becomes one Principal (DESIGN.md "Credentials accepted").
 * `client`: a service account authenticating with its own secret (revocation, introspection).
 */
export type AuthMethodUsed = 'api-key' | 'jwt' | 'oauth' | 'session' | 'client';

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
  /**
   * Scopes carried by the credential; how they narrow the roles depends on the credential's kind
   * (src/authz/index.ts). Empty: not narrowed.
   */
  scopes: string[];
  /**
   * RFC 8707: the resources (absolute URLs) this credential is restricted to; absent: every
   * resource of the hub (its general audience or its origin root).
   */
  resource?: string[];
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
  /**
   * OIDC Core §2: when the user authenticated (epoch seconds) and how (`acr`, `amr`), where
   * known — a sign-in session's, from the IdP's ID token or else the sign-in's own time.
   */
  auth_time?: number;
  acr?: string;
  amr?: string[];
  /** The refresh-token family the token was minted from: revoking the family reaches it. */
  fid?: string;
  /** Whether this service account may assert user context / exchange tokens. */
  allow_user_context?: boolean;
  allow_token_exchange?: boolean;
}

/** A Principal its caller may change without changing the one it was copied from (a cached one). */
export function copyPrincipal(p: Principal): Principal {
  const copy = { ...p, roles: [...p.roles], groups: [...p.groups], scopes: [...p.scopes] };
  if (p.resource) copy.resource = [...p.resource];
  if (p.amr) copy.amr = [...p.amr];
  return copy;
}


/** Is this the token a service account got for itself (client_credentials), or the account itself? */
export function isServiceAccount(p: Pick<Principal, 'auth_method' | 'client_id' | 'sub' | 'act'>): boolean {
  if (p.auth_method === 'client') return true;
  return p.auth_method === 'jwt' && typeof p.client_id === 'string' && p.sub === p.client_id && p.act === undefined;
}
