/**
 * The one place administrative changes are made: API keys, service accounts, OAuth clients,
 * sign-in sessions, signing keys and revocations by id. The CLI (src/cli/main.ts) and the admin
 * HTTP API (src/http/routes/admin.ts, src/revocation/routes.ts) are thin surfaces over it, so a
 * change is authorized, validated and audited the same way whichever surface made it.
 *
 * Who acts ({@link AdminActor}):
 * - a Principal over HTTP: it must hold `admin:manage` (the one rule, src/authz), and nobody creates
 *   or takes control of a credential holding a permission or flag they do not hold themselves (the
 *   privilege ceiling);
 * - the CLI (`cli:<os user>`): it works on the store directly, so it holds everything.
 *
 * Every change writes one audit event (src/audit): `admin` with an `action`, `signing_key_rotated`
 * or `revocation`, naming the actor. Refusals are OAuthErrors: `invalid_request` (400, naming the
 * field), `not_found` (404), `conflict` (409), `insufficient_scope` (403). Anything else thrown is a
 * fault, which the surfaces render as `server_error`.
 */
import type { JSONWebKeySet } from 'jose';
import { z } from 'zod';
import { checkDuration, MAX_DURATION_SECONDS, parseDuration, type ApiKeys, type ApiKeyView } from '../api-keys/index.ts';
import { cliPrincipal, type Audit, type AuditEvent, type AuditEventType } from '../audit/index.ts';
import type { AuditPage, AuditQuery } from '../audit/store.ts';
import type { ActivityMinute } from '../metrics/recent.ts';
import type { SessionSummary } from '../sessions/sessions.ts';
import type { SessionResolver } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import type { Authorizer, CredentialRights } from '../authz/index.ts';
import { refusal } from '../authz/refusal.ts';
import { suggestion } from '../config/suggest.ts';
import { OAuthError } from '../errors.ts';
import { jwksUriProblem, publicJwksProblem } from '../jwt/assertions.ts';
import type { KeyRing } from '../jwt/keys.ts';
import { CIMD_HOST_PATTERN, type ClientListing, type ClientRegistry } from '../oauth/clients/registry.ts';
import type { RefreshTokens } from '../oauth/refresh/refresh-tokens.ts';
import type { RevocationList } from '../revocation/index.ts';
import { authenticatesWithKey, CLIENT_ID_PATTERN, ServiceAccountExists, type ServiceAccounts, type ServiceAccountView } from '../service-accounts/index.ts';

/** A Principal acting over HTTP, with what the audit trail records of its request. */
export interface HttpActor {
  kind: 'principal';
  principal: Principal;
  method: string;
  /** The request path (no query): the authorization rule judges resource-bound tokens by it. */
  path: string;
  ip?: string;
  requestId?: string;
}

/** Someone running the CLI on the machine: `user` is the operating-system user. */
export interface CliActor {
  kind: 'cli';
  user: string;
}

export type AdminActor = HttpActor | CliActor;

/** @example await hub.admin.revokeApiKey(cliActor(os.userInfo().username), id) */
export function cliActor(user: string): CliActor {
  return { kind: 'cli', user };
}

export interface AdminServiceDeps {
  apiKeys: Pick<ApiKeys, 'create' | 'get' | 'list' | 'revoke'>;
  serviceAccounts: Pick<ServiceAccounts, 'create' | 'createWithKeys' | 'get' | 'list' | 'rotateSecret' | 'setDisabled' | 'delete'>;
  clients: Pick<ClientRegistry, 'list' | 'revoke' | 'cimdAllowlist' | 'setCimdAllowlist'>;
  refreshTokens: Pick<RefreshTokens, 'revokeClientFamilies' | 'revokeFamily' | 'revokeSessionFamilies'>;
  keys: Pick<KeyRing, 'currentKid' | 'list' | 'rotate'>;
  revocations: Pick<RevocationList, 'revoke'>;
  /** The sign-in sessions: revoking a session also ends it (its cookie stops working everywhere). */
  sessions: Pick<SessionResolver, 'end'>;
  authorizer: Pick<Authorizer, 'decide' | 'exceeds' | 'rbac'>;
  audit: Pick<Audit, 'record'>;
  /** The longest an access token of the hub can live: how long a revoked id must be remembered. */
  tokenLifetimeSeconds: number;
  now: () => number;
  /** The live sign-in sessions (null: cookie sessions, which cannot be listed). */
  listSessions?: () => Promise<SessionSummary[] | null>;
  /** The audit log kept in the store (MIMIR_AUDIT_RETENTION_DAYS). */
  auditLog?: { query(q: AuditQuery): Promise<AuditPage> };
  /** This instance's requests, denials and tokens issued, minute by minute over the last hour. */
  activity?: () => ActivityMinute[];
}

const roleList = z.array(z.string().regex(/^[\w.:*-]{1,64}$/, { error: 'a role is 1-64 of letters, digits and . : * _ -' })).max(50);
const scopeList = z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/, { error: 'a scope is 1-100 printable characters, no space, quote or backslash' })).max(100);

const apiKeyInput = z.object({
  name: z.string().min(1).max(100),
  roles: roleList.default([]),
  scopes: scopeList.optional(),
  /** A duration (`30d`, `12h`) or seconds. */
  expires_in: z.union([z.string(), z.number().int().positive()]).optional(),
  /** Create it even with roles the RBAC configuration does not define (needs `*`: see {@link AdminService}). */
  allow_unknown_role: z.boolean().optional(),
});

const serviceAccountInput = z.object({
  client_id: z.string().regex(CLIENT_ID_PATTERN, { error: '1-128 of letters, digits, ".", "_", "-", starting with a letter or digit' }),
  name: z.string().max(100).optional(),
  roles: roleList.default([]),
  scopes: scopeList.optional(),
  allow_user_context: z.boolean().optional(),
  allow_token_exchange: z.boolean().optional(),
  /** private_key_jwt (RFC 7523 §2.2): the account's public keys, or where they are published; then no secret is made. */
  jwks: z.unknown().optional(),
  jwks_uri: z.string().max(2000).optional(),
  allow_unknown_role: z.boolean().optional(),
});

/** What `POST /auth/admin/revocations` and `mimir-auth revoke` take. */
const revocationInput = z.object({
  type: z.enum(['session', 'access_token', 'signing_key']),
  id: z.string().min(1).max(256).regex(/^[\w.:-]+$/, { error: 'letters, digits and . : _ -' }),
});

/** The longest a personal key may live: 90 days. It keeps its owner's roles of the day it was made until then. */
export const PERSONAL_KEY_MAX_SECONDS = 90 * 86400;

/** What a signed-in user gives for a personal key: its permissions are theirs, at most. */
const ownApiKeyInput = z.object({
  name: z.string().min(1).max(100),
  scopes: scopeList.optional(),
  expires_in: z.union([z.string(), z.number().int().positive()]).optional(),
});

const auditQueryInput = z.object({
  principal: z.string().max(200).optional(),
  type: z.string().regex(/^[a-z_]{1,40}$/, { error: 'an event type such as login or access_denied' }).optional(),
  outcome: z.enum(['success', 'failure']).optional(),
  from: z.number().int().nonnegative().optional(),
  to: z.number().int().nonnegative().optional(),
  page: z.number().int().min(1).max(100000).optional(),
  per_page: z.number().int().min(1).max(500).optional(),
});

/** `PUT /auth/admin/cimd-allowlist`: the hosts client metadata documents may come from; empty: any. */
const cimdAllowlistInput = z.object({
  hosts: z.array(z.string().trim().toLowerCase().regex(CIMD_HOST_PATTERN, { error: 'a host name (tools.example.com, with :port if any) or *. and a domain (*.example.com)' })
    // `*.com` would be every .com host: a wildcard names a domain of two labels at least.
    .refine((h) => !h.startsWith('*.') || h.slice(2).replace(/:\d+$/, '').includes('.'), {
      error: (issue) => `"${String(issue.input)}" is a wildcard over a whole top-level domain: give *. and a domain of two labels at least (*.example.com), or a host name`,
    })).max(200),
});

const recordId = z.string().min(1).max(256);
const oauthClientId = z.string().min(1).max(2000);

/** Input shapes, as the admin HTTP API takes them in JSON (the CLI builds the same). */
export type ApiKeyInput = z.input<typeof apiKeyInput>;
export type ServiceAccountInput = z.input<typeof serviceAccountInput>;
export type RevocationInput = z.input<typeof revocationInput>;

/** What a revocation by id names. */
export type RevocationType = z.output<typeof revocationInput>['type'];

export class AdminService {
  readonly #d: AdminServiceDeps;

  constructor(deps: AdminServiceDeps) {
    this.#d = deps;
  }

  // --- API keys ---

  async listApiKeys(actor: AdminActor): Promise<ApiKeyView[]> {
    this.#authorize(actor);
    return this.#d.apiKeys.list();
  }

  /** Creates an API key; the key itself is returned this once and never stored. */
  async createApiKey(actor: AdminActor, input: unknown): Promise<{ key: string; record: ApiKeyView }> {
    this.#authorize(actor);
    const i = parse(apiKeyInput, input);
    const expiresInSeconds = duration(i.expires_in);
    this.#knownRoles(actor, i.roles, i.allow_unknown_role ?? false);
    this.#withinCeiling(actor, { roles: i.roles, ...(i.scopes ? { scopes: i.scopes } : {}) });
    const created = await this.#d.apiKeys.create({
      name: i.name, roles: i.roles, ...(i.scopes ? { scopes: i.scopes } : {}), ...(expiresInSeconds ? { expiresInSeconds } : {}),
    });
    this.#changed(actor, { type: 'admin', action: 'api_key_created', target: created.record.id });
    return created;
  }

  async revokeApiKey(actor: AdminActor, id: unknown): Promise<void> {
    this.#authorize(actor);
    const keyId = parse(recordId, id, 'id');
    const target = await this.#d.apiKeys.get(keyId);
    if (!target) throw notFound('API key');
    this.#withinCeiling(actor, { roles: target.roles, ...(target.scopes ? { scopes: target.scopes } : {}) });
    if (!(await this.#d.apiKeys.revoke(keyId))) throw notFound('API key');
    this.#changed(actor, { type: 'admin', action: 'api_key_revoked', target: keyId });
  }

  // --- Personal API keys (any signed-in user, on their account page) ---

  /** The signed-in user's own API keys. */
  async listOwnApiKeys(actor: HttpActor): Promise<ApiKeyView[]> {
    this.#authorizeUser(actor);
    return (await this.#d.apiKeys.list()).filter((k) => ownedBy(k, actor.principal));
  }

  /**
   * A personal API key: it speaks for the user who makes it (their upstream id), with their roles,
   * narrowed to `scopes` when given: never more than they hold (the privilege ceiling). Shown once.
   */
  async createOwnApiKey(actor: HttpActor, input: unknown): Promise<{ key: string; record: ApiKeyView }> {
    this.#authorizeUser(actor);
    const i = parse(ownApiKeyInput, input);
    if (i.expires_in === undefined) throw new OAuthError('invalid_request', `expires_in: a personal key must expire; accepted is 1 second to ${PERSONAL_KEY_MAX_SECONDS / 86400}d`);
    const expiresInSeconds = duration(i.expires_in, PERSONAL_KEY_MAX_SECONDS);
    const p = actor.principal;
    // Only roles the RBAC configuration defines: one defined later could be given anything, and
    // making a key for such a role needs `*` (allow_unknown_role), which a personal key never asks.
    const roles = p.roles.filter((r) => this.#d.authorizer.rbac.isKnownRole(r));
    this.#withinCeiling(actor, { roles, ...(i.scopes?.length ? { scopes: i.scopes } : {}) });
    const created = await this.#d.apiKeys.create({
      name: i.name, roles, ...(i.scopes?.length ? { scopes: i.scopes } : {}), ...(expiresInSeconds ? { expiresInSeconds } : {}),
      owner: { sub: p.sub, ...(p.provider ? { provider: p.provider } : {}), ...(p.email ? { email: p.email } : {}), ...(p.name ? { name: p.name } : {}) },
    });
    this.#changed(actor, { type: 'admin', action: 'api_key_created', target: created.record.id, personal: true });
    return created;
  }

  /** Revokes one of the user's own keys; anyone else's is not found. */
  async revokeOwnApiKey(actor: HttpActor, id: unknown): Promise<void> {
    this.#authorizeUser(actor);
    const keyId = parse(recordId, id, 'id');
    const target = await this.#d.apiKeys.get(keyId);
    if (!target || !ownedBy(target, actor.principal)) throw notFound('API key');
    if (!(await this.#d.apiKeys.revoke(keyId))) throw notFound('API key');
    this.#changed(actor, { type: 'admin', action: 'api_key_revoked', target: keyId, personal: true });
  }

  // --- Service accounts ---

  async listServiceAccounts(actor: AdminActor): Promise<ServiceAccountView[]> {
    this.#authorize(actor);
    return this.#d.serviceAccounts.list();
  }

  /**
   * Creates a service account; its secret is returned this once. With `jwks` or `jwks_uri` it
   * authenticates with private_key_jwt instead and gets no secret. Taken id: `conflict`.
   */
  async createServiceAccount(actor: AdminActor, input: unknown): Promise<{ clientSecret?: string; account: ServiceAccountView }> {
    this.#authorize(actor);
    const i = parse(serviceAccountInput, input);
    const keys = accountKeys(i);
    const flags = { allowUserContext: i.allow_user_context ?? false, allowTokenExchange: i.allow_token_exchange ?? false };
    this.#knownRoles(actor, i.roles, i.allow_unknown_role ?? false);
    this.#withinCeiling(actor, { roles: i.roles, ...(i.scopes ? { scopes: i.scopes } : {}), ...flags });
    let created: { clientSecret?: string; account: ServiceAccountView };
    try {
      const fields = { clientId: i.client_id, roles: i.roles, ...(i.name ? { name: i.name } : {}), ...(i.scopes ? { scopes: i.scopes } : {}), ...flags };
      created = keys ? await this.#d.serviceAccounts.createWithKeys(fields, keys) : await this.#d.serviceAccounts.create(fields);
    } catch (e) {
      if (e instanceof ServiceAccountExists) throw new OAuthError('conflict', `The service account "${i.client_id}" already exists.`);
      throw e;
    }
    this.#changed(actor, { type: 'admin', action: 'service_account_created', target: created.account.clientId, ...(keys ? { auth_method: 'private_key_jwt' } : {}) });
    return created;
  }

  /** A new secret; the previous one keeps working for the configured grace period. */
  async rotateServiceAccountSecret(actor: AdminActor, id: unknown): Promise<{ clientId: string; clientSecret: string; previousValidUntil: number }> {
    this.#authorize(actor);
    const clientId = await this.#controlledAccount(actor, id);
    const account = await this.#d.serviceAccounts.get(clientId);
    if (account && authenticatesWithKey(account)) {
      throw new OAuthError('invalid_request', 'This service account authenticates with private_key_jwt and has no secret; rotate its keys where they are published (its jwks_uri), or create it again.');
    }
    const rotated = await this.#d.serviceAccounts.rotateSecret(clientId);
    if (!rotated) throw notFound('service account');
    this.#changed(actor, { type: 'admin', action: 'service_account_secret_rotated', target: clientId });
    return { clientId, ...rotated };
  }

  async setServiceAccountDisabled(actor: AdminActor, id: unknown, disabled: boolean): Promise<{ clientId: string; disabled: boolean }> {
    this.#authorize(actor);
    const clientId = await this.#controlledAccount(actor, id);
    if (!(await this.#d.serviceAccounts.setDisabled(clientId, disabled))) throw notFound('service account');
    this.#changed(actor, { type: 'admin', action: disabled ? 'service_account_disabled' : 'service_account_enabled', target: clientId });
    return { clientId, disabled };
  }

  async deleteServiceAccount(actor: AdminActor, id: unknown): Promise<{ clientId: string }> {
    this.#authorize(actor);
    const clientId = await this.#controlledAccount(actor, id);
    if (!(await this.#d.serviceAccounts.delete(clientId))) throw notFound('service account');
    this.#changed(actor, { type: 'admin', action: 'service_account_deleted', target: clientId });
    return { clientId };
  }

  // --- OAuth clients of the authorization server ---

  async listClients(actor: AdminActor): Promise<ClientListing[]> {
    this.#authorize(actor);
    return this.#d.clients.list();
  }

  /**
   * Revokes a dynamically registered or metadata-document client: it gets no more codes or tokens,
   * and every refresh-token family issued to it is revoked (with the access tokens minted from them).
   */
  async revokeClient(actor: AdminActor, id: unknown): Promise<{ clientId: string; refreshFamiliesRevoked: number }> {
    this.#authorize(actor);
    const clientId = parse(oauthClientId, id, 'client_id');
    if (!(await this.#d.clients.revoke(clientId))) throw notFound('OAuth client');
    const families = await this.#d.refreshTokens.revokeClientFamilies(clientId, 'client_revoked');
    this.#changed(actor, { type: 'admin', action: 'oauth_client_revoked', target: clientId, refresh_families_revoked: families });
    return { clientId, refreshFamiliesRevoked: families };
  }

  /** The hosts client ID metadata documents may come from; empty: any host. */
  async cimdAllowlist(actor: AdminActor): Promise<string[]> {
    this.#authorize(actor);
    return this.#d.clients.cimdAllowlist();
  }

  /** Replaces the CIMD allowlist: from now on a client_id URL of another host is refused, cached or not. */
  async setCimdAllowlist(actor: AdminActor, input: unknown): Promise<string[]> {
    this.#authorize(actor);
    const { hosts } = parse(cimdAllowlistInput, input);
    const saved = await this.#d.clients.setCimdAllowlist(hosts);
    this.#changed(actor, { type: 'admin', action: 'cimd_allowlist_changed', hosts: saved });
    return saved;
  }

  // --- Signing keys ---

  async listSigningKeys(actor: AdminActor): Promise<{ current: string; keys: ReturnType<KeyRing['list']> }> {
    this.#authorize(actor);
    return { current: this.#d.keys.currentKid, keys: this.#d.keys.list() };
  }

  /** A new current signing key; the previous one stays published for the overlap. */
  async rotateSigningKey(actor: AdminActor): Promise<{ kid: string; alg: string; previous: string | undefined }> {
    this.#authorize(actor);
    const previous = this.#d.keys.currentKid || undefined;
    const record = await this.#d.keys.rotate();
    this.#changed(actor, { type: 'signing_key_rotated', kid: record.kid });
    return { kid: record.kid, alg: record.alg, previous };
  }

  // --- Revocation by id (what has no token to present) and sessions ---

  /**
   * Revokes a sign-in session or refresh family (`session`, by sid: the session itself ends too),
   * an access token (`access_token`, by jti) or a signing key (`signing_key`, by kid: every token
   * it signed stops working; the current key is rotated first), on every instance.
   */
  async revoke(actor: AdminActor, input: unknown): Promise<{ type: RevocationType; id: string }> {
    this.#authorize(actor);
    const { type, id } = parse(revocationInput, input);
    // Nothing a revoked id names can outlive the longest token lifetime from now.
    const until = Math.floor(this.#d.now() / 1000) + this.#d.tokenLifetimeSeconds;
    if (type === 'signing_key') {
      // Every token it signed stops working, those of `*` holders too: only `*` may do that.
      this.#needsStar(actor, 'Revoking a signing key ends every token it signed, those of * holders too: it needs the * permission.');
      if (id === this.#d.keys.currentKid) await this.#d.keys.rotate();
      await this.#d.revocations.revoke('kid', id, until);
    } else {
      if (type === 'session' && actor.kind !== 'cli') {
        const target = (await this.#d.listSessions?.())?.find((s) => s.sid === id);
        if (target && this.#holdsStar(target, actor.path)) this.#needsStar(actor, 'This session\'s user holds the * permission: ending it needs * too.');
      }
      await this.#d.revocations.revoke(type === 'session' ? 'sid' : 'jti', id, until);
      if (type === 'session') {
        // The session itself ends too: its cookie stops working on every instance, not only its
        // tokens; and its refresh families are revoked for good (their refresh tokens outlive any
        // access token the revocation list must remember): those the sign-in session started, and
        // a family of that id (an access token's sid is its family's id when no session is behind it).
        await this.#d.sessions.end?.(id);
        await this.#d.refreshTokens.revokeSessionFamilies(id, 'revoked_by_admin');
        await this.#d.refreshTokens.revokeFamily(id, 'revoked_by_admin');
      }
    }
    this.#changed(actor, { type: 'revocation', token_type: type, target: id });
    return { type, id };
  }

  /** Ends a sign-in session by id (its cookie and every token of it stop working): {@link revoke} of a `session`. */
  async endSession(actor: AdminActor, sid: unknown): Promise<void> {
    await this.revoke(actor, { type: 'session', id: sid });
  }

  /** Live sign-in sessions, those of users whose id, email or name contains `user` when given; null: cookie sessions. */
  async listSessions(actor: AdminActor, user?: string): Promise<SessionSummary[] | null> {
    this.#authorize(actor);
    const all = await this.#d.listSessions?.() ?? null;
    const needle = user?.trim().toLowerCase();
    if (!all || !needle) return all;
    return all.filter((s) => [s.sub, s.email, s.name].some((v) => v?.toLowerCase().includes(needle)));
  }

  // --- Audit log and activity ---

  /** Audit events kept in the store, newest first, filtered and paginated. Not kept (retention 0): `not_found`. */
  async queryAudit(actor: AdminActor, input: unknown): Promise<AuditPage> {
    this.#authorize(actor);
    const q = parse(auditQueryInput, input);
    if (!this.#d.auditLog) throw new OAuthError('not_found', 'Audit events are not kept in the store (MIMIR_AUDIT_RETENTION_DAYS=0).');
    return this.#d.auditLog.query({
      ...(q.principal ? { principal: q.principal } : {}), ...(q.type ? { type: q.type } : {}), ...(q.outcome ? { outcome: q.outcome } : {}),
      ...(q.from !== undefined ? { from: q.from } : {}), ...(q.to !== undefined ? { to: q.to } : {}),
      ...(q.page ? { page: q.page } : {}), ...(q.per_page ? { perPage: q.per_page } : {}),
    });
  }

  /** This instance's requests, denials and tokens issued over the last hour, minute by minute. */
  activity(actor: AdminActor): ActivityMinute[] {
    this.#authorize(actor);
    return this.#d.activity?.() ?? [];
  }

  // --- The rules every change goes through ---

  /**
   * Whether the actor is a signed-in user acting for themselves (personal API keys): the one rule
   * with no permission asked (any authenticated principal, resource binding respected), and only a
   * browser session: a key cannot mint keys.
   */
  #authorizeUser(actor: HttpActor): void {
    const decision = this.#d.authorizer.decide(actor.principal, { permission: null, path: actor.path });
    if (decision.allowed && actor.principal.auth_method === 'session') return;
    this.#d.audit.record({ type: 'access_denied', outcome: 'failure', reason: decision.allowed ? 'not_a_session' : decision.reason, method: actor.method, path: actor.path.slice(0, 200), ...who(actor) });
    if (!decision.allowed) throw refusal(decision, 'Personal API keys are managed by a signed-in user.');
    throw new OAuthError('access_denied', 'Personal API keys are managed from a signed-in browser session (the account page).', { status: 403 });
  }

  /** The one authorization rule: an HTTP actor needs `admin:manage`. The CLI holds everything. */
  #authorize(actor: AdminActor): void {
    if (actor.kind === 'cli') return;
    const decision = this.#d.authorizer.decide(actor.principal, { permission: 'admin:manage', path: actor.path });
    if (decision.allowed) return;
    this.#d.audit.record({ type: 'access_denied', outcome: 'failure', reason: decision.reason, permission: 'admin:manage', method: actor.method, path: actor.path.slice(0, 200), ...who(actor) });
    throw refusal(decision, 'The admin API needs the admin:manage permission.');
  }

  /** The one authorization rule asked for `*` (what only the holders of everything may do); refused: 403, audited. */
  #needsStar(actor: AdminActor, why: string): void {
    if (actor.kind === 'cli') return;
    const decision = this.#d.authorizer.decide(actor.principal, { permission: '*', path: actor.path });
    if (decision.allowed) return;
    this.#d.audit.record({ type: 'access_denied', outcome: 'failure', reason: 'privilege_ceiling', permission: '*', method: actor.method, path: actor.path.slice(0, 200), ...who(actor) });
    throw refusal(decision, why);
  }

  /** Whether a session's user holds `*` with the roles of their sign-in (the one rule, asked for them). */
  #holdsStar(s: SessionSummary, path: string): boolean {
    const principal: Principal = { sub: s.sub, provider: s.provider, roles: [...s.roles], groups: [], scopes: [], auth_method: 'session', sid: s.sid };
    return this.#d.authorizer.decide(principal, { permission: '*', path }).allowed;
  }

  /**
   * The privilege ceiling: nobody creates or takes control of a credential holding a permission or
   * a flag they do not hold themselves (403 insufficient_scope, naming what is missing).
   */
  #withinCeiling(actor: AdminActor, rights: CredentialRights): void {
    if (actor.kind === 'cli') return;
    const missing = this.#d.authorizer.exceeds(actor.principal, rights);
    if (missing === undefined) return;
    this.#d.audit.record({ type: 'access_denied', outcome: 'failure', reason: 'privilege_ceiling', permission: missing, method: actor.method, path: actor.path.slice(0, 200), ...who(actor) });
    throw refusal({ allowed: false, reason: 'insufficient_scope', permission: missing }, `This would hand out or control "${missing}", which you do not hold yourself.`);
  }

  /**
   * Roles the RBAC configuration does not define are refused (400 naming them, the known roles and
   * the likely intended one): such a role grants nothing today, so a typo makes a useless
   * credential, and once a role of that name is defined the credential holds whatever it is given.
   * For that reason `allow_unknown_role` needs `*` (403 otherwise, through the one rule); the
   * CLI holds everything.
   */
  #knownRoles(actor: AdminActor, roles: readonly string[], allowUnknown: boolean): void {
    const rbac = this.#d.authorizer.rbac;
    const unknown = [...new Set(roles.filter((r) => !rbac.isKnownRole(r)))];
    if (unknown.length === 0) return;
    if (!allowUnknown) {
      const known = Object.keys(rbac.config.roleMappings);
      const hints = unknown.map((r) => suggestion(r, known)).filter(Boolean);
      throw new OAuthError('invalid_request', `roles: ${unknown.map((r) => `"${r}"`).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not defined in the RBAC configuration (MIMIR_RBAC_CONFIG)`
        + `${unknown.length === 1 && hints.length ? hints[0] : ''}; known roles: ${known.join(', ')}. `
        + 'To create it for a role defined later, pass allow_unknown_role (CLI: --allow-unknown-role), which needs the * permission.');
    }
    if (actor.kind === 'cli') return;
    const decision = this.#d.authorizer.decide(actor.principal, { permission: '*', path: actor.path });
    if (decision.allowed) return;
    this.#d.audit.record({ type: 'access_denied', outcome: 'failure', reason: 'privilege_ceiling', permission: '*', method: actor.method, path: actor.path.slice(0, 200), ...who(actor) });
    throw refusal(decision, 'allow_unknown_role needs the * permission: a role defined later may be given any permission.');
  }

  /** The id of an existing service account the actor may control (404, then the ceiling). */
  async #controlledAccount(actor: AdminActor, id: unknown): Promise<string> {
    const clientId = parse(recordId, id, 'client_id');
    const account = await this.#d.serviceAccounts.get(clientId);
    if (!account) throw notFound('service account');
    this.#withinCeiling(actor, { roles: account.roles, scopes: account.scopes, allowUserContext: account.allowUserContext, allowTokenExchange: account.allowTokenExchange });
    return clientId;
  }

  #changed(actor: AdminActor, event: { type: AuditEventType; [detail: string]: unknown }): void {
    this.#d.audit.record({ ...event, outcome: 'success', ...who(actor) });
  }
}

/** Whether a key is the personal key of this user (same sub at the same provider). */
function ownedBy(k: ApiKeyView, p: Principal): boolean {
  return k.owner !== undefined && k.owner.sub === p.sub && (k.owner.provider ?? '') === (p.provider ?? '');
}

/** The audit fields naming the actor: the Principal with its request, or the CLI's OS user. */
function who(actor: AdminActor): Pick<AuditEvent, 'principal' | 'ip' | 'request_id'> {
  if (actor.kind === 'cli') return { principal: cliPrincipal(actor.user) };
  return { principal: actor.principal, ip: actor.ip, request_id: actor.requestId };
}

/** Validates `input`; the first problem becomes invalid_request naming its field (`roles.0: …`). */
function parse<T>(schema: z.ZodType<T>, input: unknown, field?: string): T {
  const r = schema.safeParse(field === undefined ? input ?? {} : input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = [...(field ? [field] : []), ...issue.path.map(String)].join('.') || 'body';
  throw new OAuthError('invalid_request', `${path}: ${issue.message}`);
}

function duration(value: string | number | undefined, max = MAX_DURATION_SECONDS): number | undefined {
  if (value === undefined) return value;
  try {
    return typeof value === 'number' ? checkDuration(value, String(value), max) : parseDuration(value, max);
  } catch (e) {
    throw new OAuthError('invalid_request', `expires_in: ${(e as Error).message}`);
  }
}

/**
 * The keys of a private_key_jwt account, validated: a JWK Set of public signature keys, or a
 * jwks_uri (https, or http on loopback); never both. None: the account gets a secret.
 */
function accountKeys(i: { jwks?: unknown; jwks_uri?: string | undefined }): { jwks: JSONWebKeySet } | { jwksUri: string } | undefined {
  if (i.jwks !== undefined && i.jwks_uri !== undefined) throw new OAuthError('invalid_request', 'jwks: give the keys or a jwks_uri, not both.');
  if (i.jwks !== undefined) {
    const problem = publicJwksProblem(i.jwks);
    if (problem) throw new OAuthError('invalid_request', `jwks: ${problem}.`);
    return { jwks: i.jwks as JSONWebKeySet };
  }
  if (i.jwks_uri !== undefined) {
    const problem = jwksUriProblem(i.jwks_uri);
    if (problem) throw new OAuthError('invalid_request', `jwks_uri: ${problem}.`);
    return { jwksUri: i.jwks_uri };
  }
  return undefined;
}

/** The id is not echoed: whatever was pasted there (a key, by mistake) is not sent back. */
function notFound(what: string): OAuthError {
  return new OAuthError('not_found', `No ${what} with that id.`);
}
