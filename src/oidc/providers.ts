/**
 * Upstream identity providers: the seed's single provider (`MIMIR_AUTH_PROVIDER` +
 * `MIMIR_OAUTH_*` + per-kind variables) and/or several from `MIMIR_AUTH_PROVIDERS_FILE`
 * (JSON or YAML). Issuers are derived per kind where the seed implies them, and must be https
 * except on loopback hosts.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, PROVIDER_KINDS, type Config, type ProviderKind } from '../config/index.ts';
import { describeJsonError } from '../config/json-error.ts';
import { didYouMean, suggestion } from '../config/suggest.ts';

/**
 * How opaque (non-JWT) access tokens of a provider are checked. `userinfo` is Google's only:
 * its tokeninfo endpoint says whose token it is, then userinfo fills the profile. A generic
 * userinfo endpoint answers for a token of any client of the IdP, so no other kind may use it.
 */
export type OpaqueTokenMode = 'introspection' | 'userinfo' | 'off';

/**
 * Provider ids that may not be configured: the user ids the hub sends upstream are
 * `<provider>:<sub>` for IdP users and `api-key:…` / `service-account:…` for the hub's own
 * credentials, so an IdP with one of these ids could name itself as a non-IdP principal.
 */
export const RESERVED_PROVIDER_IDS: readonly string[] = ['api-key', 'service-account'];

export interface ProviderSettings {
  readonly id: string;
  readonly kind: ProviderKind;
  readonly name: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly redirectUri: string;
  /** The scope asked for at sign-in: the configured one, or {@link BASE_SCOPE}. */
  readonly scope: string;
  /**
   * Scopes added to `scope` at sign-in when the IdP lists them in its discovery `scopes_supported`:
   * the kind's role/group scope ({@link ROLE_SCOPES}); none when the scope is configured.
   */
  readonly roleScopes: readonly string[];
  /** `aud` an IdP access token must carry to be accepted as a bearer token; unset: none are. */
  readonly audience: string | undefined;
  /**
   * Further values accepted as the `aud`/`azp` (tokeninfo) or `aud`/`client_id` (introspection)
   * of an opaque access token, besides the client id and `audience`.
   */
  readonly audiences: readonly string[];
  /**
   * Use the email without `email_verified: true` (an IdP that verifies every address and does
   * not say so). See `verifiedEmail` in claims.ts for each kind's rule.
   */
  readonly trustEmail: boolean;
  readonly endpoints: {
    readonly authorization?: string; readonly token?: string; readonly jwks?: string;
    readonly userinfo?: string; readonly revocation?: string; readonly introspection?: string; readonly endSession?: string;
    /** Google's tokeninfo (whose token an opaque access token is); see `tokeninfoEndpoint` in bearer.ts. */
    readonly tokeninfo?: string;
  };
  readonly hostedDomain: string | undefined;
  /**
   * Azure multi-tenant apps (tenant `organizations` or `common`): the issuer with `{tenantid}` in
   * place of the tenant, as Microsoft's discovery publishes it. Tokens must carry exactly this
   * issuer with their own `tid` substituted. `issuer` is then only where discovery is fetched.
   */
  readonly issuerTemplate: string | undefined;
  readonly allowedTenants: readonly string[];
  /** Dot path of the roles claim, overriding the kind's default. */
  readonly rolesClaim: string | undefined;
  readonly roleMappings: Readonly<Record<string, readonly string[]>>;
  readonly groupsToRoles: Readonly<Record<string, readonly string[]>>;
  readonly opaqueTokens: OpaqueTokenMode;
  readonly jwksCooldownSeconds: number;
  /** Extra authorization request parameters (Auth0 `audience`). */
  readonly authorizationParams: Readonly<Record<string, string>>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopback(url: string): boolean {
  try {
    return LOOPBACK.has(new URL(url).hostname);
  } catch {
    return false;
  }
}

const roleMap = z.record(z.string(), z.union([z.string(), z.array(z.string())]))
  .transform((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Array.isArray(v) ? v : [v]])));

const fileEntry = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lower-case letters, digits, - or _'),
  kind: z.enum(PROVIDER_KINDS as [ProviderKind, ...ProviderKind[]]),
  name: z.string().min(1).optional(),
  issuer: z.string().optional(),
  clientId: z.string().min(1),
  clientSecret: z.string().optional(),
  redirectUri: z.string().optional(),
  scope: z.string().optional(),
  audience: z.string().optional(),
  endpoints: z.object({
    authorization: z.string().optional(), token: z.string().optional(), jwks: z.string().optional(), userinfo: z.string().optional(),
    revocation: z.string().optional(), introspection: z.string().optional(), endSession: z.string().optional(),
    tokeninfo: z.string().optional(),
  }).optional(),
  audiences: z.array(z.string().min(1)).optional(),
  trustEmail: z.boolean().optional(),
  oktaDomain: z.string().optional(),
  authorizationServer: z.string().optional(),
  auth0Domain: z.string().optional(),
  tenantId: z.string().optional(),
  /** Alias of tenantId. */
  tenant: z.string().optional(),
  allowedTenants: z.array(z.string()).optional(),
  hostedDomain: z.string().optional(),
  keycloakServerUrl: z.string().optional(),
  realm: z.string().optional(),
  rolesClaim: z.string().optional(),
  roleMappings: roleMap.optional(),
  groupsToRoles: roleMap.optional(),
  opaqueTokens: z.enum(['introspection', 'userinfo', 'off']).optional(),
  jwksCooldownSeconds: z.number().min(0).max(3600).optional(),
}).strict();

type FileEntry = z.infer<typeof fileEntry>;

/** OIDC Core §5.4: the standard claims a sign-in shows (name, email) come with these scopes. */
export const BASE_SCOPE = 'openid profile email';

/**
 * The scope that brings the role/group claim each kind's mapping reads (claims.ts), where one is
 * needed; the others send their claim without being asked:
 * - okta: `groups` (the groups claim an admin configures is tied to it; fixtures/provider-claims/okta.json);
 * - generic: `roles` and `groups` where the IdP has such scopes (Dex, for one, sends groups only with `groups`);
 * - auth0 (a namespaced claim an Action adds), azure (`roles`, `groups` from the app registration),
 *   keycloak (`realm_access` from the default `roles` client scope, applied unasked), cognito
 *   (`cognito:groups`), google (no roles): nothing extra.
 * Requested only when the IdP's discovery lists them in `scopes_supported`, since an IdP refuses a
 * scope it does not know (Okta: `invalid_scope`) and a claim tied to "any scope" comes regardless.
 */
export const ROLE_SCOPES: Readonly<Record<ProviderKind, readonly string[]>> = {
  okta: ['groups'], auth0: [], azure: [], google: [], keycloak: [], cognito: [], generic: ['roles', 'groups'],
};

/**
 * The `scope` of a sign-in request: the provider's scope plus those of its role scopes the IdP
 * lists in `scopes_supported` (none when it publishes no list).
 *
 * @example
 * signInScope(okta, ['openid', 'profile', 'email', 'groups']) // 'openid profile email groups'
 */
export function signInScope(p: Pick<ProviderSettings, 'scope' | 'roleScopes'>, supported: unknown): string {
  const listed = Array.isArray(supported) ? supported.filter((s): s is string => typeof s === 'string') : [];
  const scopes = p.scope.split(' ').filter(Boolean);
  for (const s of p.roleScopes) if (listed.includes(s) && !scopes.includes(s)) scopes.push(s);
  return scopes.join(' ');
}

const DISPLAY: Record<ProviderKind, string> = {
  okta: 'Okta', auth0: 'Auth0', azure: 'Microsoft', google: 'Google', keycloak: 'Keycloak', cognito: 'AWS Cognito', generic: 'Single sign-on',
};

/** Every configured provider, validated. Throws ConfigError naming the variable or file entry. */
export function loadProviders(config: Config, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ProviderSettings[] {
  const out: ProviderSettings[] = [];
  const problems: string[] = [];
  const p = config.provider;
  if (p.kind) {
    const entry: FileEntry = {
      id: p.kind, kind: p.kind, clientId: p.clientId ?? '',
      ...opt('issuer', p.issuer), ...opt('clientSecret', p.clientSecret), ...opt('audience', p.audience ?? p.auth0.audience),
      ...opt('scope', p.scope), redirectUri: p.redirectUri,
      endpoints: {
        ...opt('authorization', p.authorizationEndpoint), ...opt('token', p.tokenEndpoint), ...opt('jwks', p.jwksUri),
        ...opt('userinfo', p.userinfoEndpoint), ...opt('revocation', p.revocationEndpoint), ...opt('tokeninfo', p.tokeninfoEndpoint),
      },
      trustEmail: p.trustEmail,
      ...opt('oktaDomain', p.okta.domain), ...opt('authorizationServer', p.okta.authorizationServer),
      ...opt('auth0Domain', p.auth0.domain), ...opt('tenantId', p.azure.tenantId), allowedTenants: [...p.azure.allowedTenants],
      ...opt('hostedDomain', p.google.hostedDomain), ...opt('keycloakServerUrl', p.keycloak.serverUrl), ...opt('realm', p.keycloak.realm),
    };
    if (!p.clientId) problems.push('MIMIR_OAUTH_CLIENT_ID: is required when MIMIR_AUTH_PROVIDER is set');
    else out.push(settle(entry, config, 'MIMIR_OAUTH_ISSUER', problems));
  }
  if (p.providersFile) out.push(...fileProviders(p.providersFile, config, problems, read));
  const ids = new Set<string>();
  for (const s of out) {
    if (ids.has(s.id)) problems.push(`provider id "${s.id}" is configured twice; ids must be unique`);
    ids.add(s.id);
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/**
 * The providers of MIMIR_AUTH_PROVIDERS_FILE. Each problem names the file, the entry (its index
 * and id), the field, what would be accepted and, for a slip, the likely intended word: `kind:
 * "octa" is not one of okta, …; did you mean "okta"?`, `"clientID" is not a field; did you mean "clientId"?`.
 */
function fileProviders(file: string, config: Config, problems: string[], read: (path: string) => string): ProviderSettings[] {
  const where = `MIMIR_AUTH_PROVIDERS_FILE (${file})`;
  const yaml = /\.ya?ml$/i.test(file);
  let text: string;
  try {
    text = read(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError([`${where}: cannot be read (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? (e as Error).message}); set MIMIR_AUTH_PROVIDERS_FILE to a readable JSON or YAML file`]);
  }
  let doc: unknown;
  try {
    doc = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`${where}: cannot be read as ${yaml ? 'YAML' : 'JSON'}: ${yaml ? (e as Error).message : describeJsonError(text, e)}`]);
  }
  const shape = 'expected a list of providers, or an object with only "providers": [...]';
  let entries: unknown[];
  if (Array.isArray(doc)) {
    entries = doc;
  } else if (isRecord(doc) && Array.isArray(doc.providers)) {
    const extra = Object.keys(doc).filter((k) => k !== 'providers');
    if (extra.length) throw new ConfigError(extra.map((k) => `${where}: "${k}" is not a member of the document${suggestion(k, ['providers'])} (${shape})`));
    entries = doc.providers;
  } else {
    throw new ConfigError([`${where}: document: ${shape}`]);
  }
  const out: ProviderSettings[] = [];
  const refused: string[] = [];
  entries.forEach((raw, i) => {
    const label = `${where}: providers.${i}${isRecord(raw) && typeof raw.id === 'string' ? ` (${raw.id})` : ''}`;
    const parsed = fileEntry.safeParse(raw);
    if (parsed.success) out.push(settle(parsed.data, config, label, problems));
    else refused.push(...entryProblems(label, raw, parsed.error.issues));
  });
  if (refused.length) throw new ConfigError([...problems, ...refused]);
  return out;
}

const ENTRY_FIELDS = Object.keys(fileEntry.shape);

/** The zod issues of one entry, as lines naming the field, the value and what would be accepted. */
function entryProblems(label: string, raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  if (!isRecord(raw)) return [`${label}: expected an object with id, kind, clientId and the kind's settings`];
  const lines: string[] = [];
  const meant = new Set<string>();
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys' || issue.path.length) continue;
    for (const key of issue.keys) {
      const hit = didYouMean(key, ENTRY_FIELDS);
      if (hit) meant.add(hit);
      lines.push(`${label}: "${key}" is not a field of a provider${hit ? `; did you mean "${hit}"?` : ` (fields: ${ENTRY_FIELDS.join(', ')})`}`);
    }
  }
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && !issue.path.length) continue;
    const path = issue.path.map(String).join('.');
    const value = issue.path.reduce<unknown>((v, k) => (isRecord(v) ? v[String(k)] : undefined), raw);
    if (value === undefined && issue.path.length === 1) {
      // A missing field an unknown key above was likely meant as is said there once.
      if (!meant.has(path)) lines.push(`${label}: ${path}: is required${issue.code === 'invalid_type' ? ` (${issue.expected})` : ''}`);
    } else if (issue.code === 'invalid_value') {
      const allowed = issue.values.map(String);
      lines.push(`${label}: ${path}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}${typeof value === 'string' ? suggestion(value, allowed) : ''}`);
    } else {
      lines.push(`${label}: ${path}: ${issue.message}`);
    }
  }
  return lines;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function opt<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined || value === '' ? {} : { [key]: value }) as { [P in K]?: string };
}

/** Microsoft's tenant-independent endpoints: tokens come from whichever tenant the user belongs to. */
const AZURE_MULTI_TENANT = /\/(organizations|common)\/v2\.0\/?$/;

function settle(raw: FileEntry, config: Config, where: string, problems: string[]): ProviderSettings {
  const e: FileEntry = raw.tenant !== undefined && raw.tenantId === undefined ? { ...raw, tenantId: raw.tenant } : raw;
  const issuer = deriveIssuer(e);
  const issuerTemplate = e.kind === 'azure' && issuer && AZURE_MULTI_TENANT.test(issuer)
    ? issuer.replace(AZURE_MULTI_TENANT, '/{tenantid}/v2.0') : undefined;
  if (!issuer) {
    problems.push(`${where}: no issuer; set it${hintFor(e.kind)}`);
  } else {
    checkUrl(issuer, `${where}: issuer`, problems);
  }
  for (const [name, url] of Object.entries(e.endpoints ?? {})) if (url) checkUrl(url, `${where}: ${name} endpoint`, problems);
  if (RESERVED_PROVIDER_IDS.includes(e.id)) {
    problems.push(`${where}: id "${e.id}" is reserved (user ids of the hub's own ${e.id === 'api-key' ? 'API keys' : 'service accounts'} begin with it); choose another id`);
  }
  if (e.opaqueTokens === 'userinfo' && e.kind !== 'google') {
    // A userinfo answer does not say which client the token was issued to (issue 15, finding 4).
    problems.push(`${where}: opaqueTokens: "userinfo" is accepted only for kind google (its tokeninfo names the token's client); use "introspection" or "off"`);
  }
  const audience = e.audience;
  return {
    id: e.id,
    kind: e.kind,
    name: e.name ?? DISPLAY[e.kind],
    issuer: issuer ?? '',
    clientId: e.clientId,
    clientSecret: e.clientSecret,
    redirectUri: e.redirectUri ?? config.provider.redirectUri,
    scope: e.scope ?? config.provider.scope ?? BASE_SCOPE,
    roleScopes: (e.scope ?? config.provider.scope) === undefined ? ROLE_SCOPES[e.kind] : [],
    audience,
    audiences: e.audiences ?? [],
    trustEmail: e.trustEmail ?? false,
    endpoints: e.endpoints ?? {},
    hostedDomain: e.hostedDomain,
    issuerTemplate,
    allowedTenants: e.allowedTenants ?? [],
    rolesClaim: e.rolesClaim,
    roleMappings: e.roleMappings ?? {},
    groupsToRoles: e.groupsToRoles ?? {},
    // Google access tokens are opaque (userinfo); Okta's org AS ones too (introspection).
    opaqueTokens: e.opaqueTokens ?? (e.kind === 'google' ? 'userinfo' : e.kind === 'okta' && !e.authorizationServer && !/\/oauth2\//.test(issuer ?? '') ? 'introspection' : 'off'),
    jwksCooldownSeconds: e.jwksCooldownSeconds ?? 30,
    authorizationParams: e.kind === 'auth0' && audience ? { audience } : {},
  };
}

/** The issuer the seed implies for each kind when it is not given explicitly. */
export function deriveIssuer(e: Pick<FileEntry, 'kind' | 'issuer' | 'oktaDomain' | 'authorizationServer' | 'auth0Domain' | 'tenantId' | 'keycloakServerUrl' | 'realm'>): string | undefined {
  const host = (d: string) => (/^https?:\/\//.test(d) ? d : `https://${d}`).replace(/\/+$/, '');
  let issuer = e.issuer;
  if (!issuer) {
    switch (e.kind) {
      case 'okta':
        if (e.oktaDomain) issuer = e.authorizationServer ? `${host(e.oktaDomain)}/oauth2/${e.authorizationServer}` : host(e.oktaDomain);
        break;
      case 'auth0': if (e.auth0Domain) issuer = `${host(e.auth0Domain)}/`; break;
      case 'azure': if (e.tenantId) issuer = `https://login.microsoftonline.com/${e.tenantId}/v2.0`; break;
      case 'google': issuer = 'https://accounts.google.com'; break;
      case 'keycloak': if (e.keycloakServerUrl && e.realm) issuer = `${e.keycloakServerUrl.replace(/\/+$/, '')}/realms/${e.realm}`; break;
      default: break;
    }
  }
  // Auth0's issuer always ends with "/" and is compared exactly (fixtures/provider-claims/auth0.json).
  if (issuer && e.kind === 'auth0' && !issuer.endsWith('/')) issuer += '/';
  return issuer;
}

function hintFor(kind: ProviderKind): string {
  switch (kind) {
    case 'okta': return ' (or MIMIR_OKTA_DOMAIN, with MIMIR_OKTA_AUTHORIZATION_SERVER for a custom authorization server)';
    case 'auth0': return ' (or MIMIR_AUTH0_DOMAIN)';
    case 'azure': return ' (or MIMIR_AZURE_TENANT_ID)';
    case 'keycloak': return ' (or MIMIR_KEYCLOAK_SERVER_URL and MIMIR_KEYCLOAK_REALM)';
    default: return ' (MIMIR_OAUTH_ISSUER or "issuer" in the providers file)';
  }
}

function checkUrl(url: string, what: string, problems: string[]): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    problems.push(`${what}: ${JSON.stringify(url)} is not a URL`);
    return;
  }
  if (u.protocol === 'https:') return;
  if (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) return;
  problems.push(`${what}: ${JSON.stringify(url)} must use https (http is allowed only on 127.0.0.1, localhost or [::1])`);
}
