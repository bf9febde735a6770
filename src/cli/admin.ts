/**
 * The CLI's admin commands: thin surfaces over the admin service (src/admin/service.ts), which
 * authorizes, validates, makes the change and audits it. They work on the configured store
 * directly, with no server running, so the first admin key can be bootstrapped.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import pino from 'pino';
import { cliActor, type ApiKeyInput, type CliActor, type ServiceAccountInput } from '../admin/service.ts';
import { envExample, loadConfig, redactedVariables, type Config } from '../config/index.ts';
import { OAuthError } from '../errors.ts';
import { openHub, type Hub } from '../hub.ts';
import { createLogger } from '../logger.ts';
import { dataDirError, UsageError } from './usage-error.ts';

export { UsageError } from './usage-error.ts';

/**
 * The hub an admin command works on. Its audit lines go to MIMIR_AUDIT_LOG_FILE: the CLI's stdout
 * carries its answer (`--json` must stay parseable) and its stderr its errors, and either is
 * usually a terminal, where an audit line is noise and is lost. So a change made with the CLI is
 * recorded durably whatever MIMIR_AUDIT_LOG_DESTINATION says for the server's stream (`stdout`,
 * `file` or `both`); MIMIR_LOG_AUTH_EVENTS=false turns it off.
 */
export async function withHub(fn: (hub: Hub) => Promise<number>): Promise<number> {
  const loaded = loadConfig();
  const config: Config = { ...loaded, audit: { ...loaded.audit, destination: 'file' } };
  // The CLI prints results, not operational logs.
  const hub = await openHub(config, { logger: createLogger('warn', pino.destination(2)) }).catch((e: unknown) => { throw dataDirError(e, config.dataDir); });
  try {
    return await fn(hub);
  } finally {
    await hub.close();
  }
}

export function configCommand(o: { json?: boolean; example?: boolean }): number {
  if (o.example) {
    process.stdout.write(envExample());
    return 0;
  }
  const vars = redactedVariables(loadConfig());
  if (o.json) {
    console.log(JSON.stringify(vars, null, 2));
  } else {
    for (const [name, value] of Object.entries(vars)) console.log(`${name}=${value ?? ''}`);
  }
  return 0;
}

/** `--jwks-file` (a JWK Set, read here) or `--jwks-uri`: the keys of a private_key_jwt account. */
function keysOption(file: string | undefined, uri: string | undefined): { jwks?: unknown; jwks_uri?: string } {
  if (file !== undefined && uri !== undefined) throw new UsageError('service-accounts create: give --jwks-file or --jwks-uri, not both');
  if (uri !== undefined) return { jwks_uri: uri };
  if (file === undefined) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`service-accounts create: --jwks-file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return { jwks: JSON.parse(text) as unknown };
  } catch {
    throw new UsageError(`service-accounts create: --jwks-file ${file} is not JSON (a JWK Set: {"keys": [...]})`);
  }
}

/** `a,b, c` → `['a', 'b', 'c']`. */
export function csv(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** A moment for the terminal; "-" when there is none, "—" when it is no date (stored data never fails the listing). */
function date(s: number | undefined): string {
  if (s === undefined) return '-';
  const d = new Date(s * 1000);
  return Number.isFinite(d.getTime()) ? d.toISOString() : '—';
}

export interface KeyCreateOptions { name: string; roles?: string; scopes?: string; expiresIn?: string; allowUnknownRole?: boolean; json?: boolean }

export async function createKey(hub: Hub, o: KeyCreateOptions): Promise<number> {
  const scopes = csv(o.scopes);
  const { key, record } = await hub.admin.createApiKey(actor(), {
    name: o.name, roles: csv(o.roles), ...(scopes.length ? { scopes } : {}), ...(o.expiresIn ? { expires_in: o.expiresIn } : {}),
    ...(o.allowUnknownRole ? { allow_unknown_role: true } : {}),
  } satisfies ApiKeyInput);
  if (o.json) {
    console.log(JSON.stringify({ ...record, key }));
  } else {
    console.log(`Created API key ${record.id} (${record.name}) with roles [${record.roles.join(', ')}]${record.scopes ? ` narrowed to [${record.scopes.join(', ')}]` : ''}${record.expiresAt ? `, expires ${date(record.expiresAt)}` : ''}.`);
    console.log('Store it now: it is shown only this once.\n');
    console.log(`  ${key}\n`);
    console.log(`Use it: curl -H "X-API-Key: ${key.slice(0, 12)}…" ${hub.config.publicUrl}/auth/me`);
  }
  return 0;
}

export async function listKeys(hub: Hub, o: { json?: boolean }): Promise<number> {
  const keys = await hub.admin.listApiKeys(actor());
  if (o.json) {
    console.log(JSON.stringify(keys, null, 2));
  } else if (keys.length === 0) {
    console.log('No API keys. Create one: mimir-auth keys create --name NAME --roles admin');
  } else {
    console.log(['ID'.padEnd(18), 'NAME'.padEnd(20), 'ROLES'.padEnd(20), 'STATUS'.padEnd(8), 'CREATED'.padEnd(25), 'EXPIRES'.padEnd(25), 'LAST USED'.padEnd(25), 'REQUESTS'].join(' '));
    for (const k of keys) {
      console.log([k.id.padEnd(18), k.name.slice(0, 20).padEnd(20), k.roles.join(',').slice(0, 20).padEnd(20), k.status.padEnd(8), date(k.createdAt).padEnd(25), date(k.expiresAt).padEnd(25), date(k.lastUsedAt).padEnd(25), String(k.requestCount ?? 0)].join(' '));
    }
  }
  return 0;
}

export async function revokeKey(hub: Hub, id: string): Promise<number> {
  await hub.admin.revokeApiKey(actor(), id);
  console.log(`Revoked API key ${id}.`);
  return 0;
}

export interface AccountCreateOptions {
  id: string; name?: string; roles?: string; scopes?: string; allowUserContext?: boolean; allowTokenExchange?: boolean;
  jwksFile?: string; jwksUri?: string; allowUnknownRole?: boolean; json?: boolean;
}

export async function createAccount(hub: Hub, o: AccountCreateOptions): Promise<number> {
  const scopes = csv(o.scopes);
  const keys = keysOption(o.jwksFile, o.jwksUri);
  let created: Awaited<ReturnType<Hub['admin']['createServiceAccount']>>;
  try {
    created = await hub.admin.createServiceAccount(actor(), {
      client_id: o.id, roles: csv(o.roles), ...(scopes.length ? { scopes } : {}), ...(o.name ? { name: o.name } : {}),
      allow_user_context: o.allowUserContext ?? false, allow_token_exchange: o.allowTokenExchange ?? false, ...keys,
      ...(o.allowUnknownRole ? { allow_unknown_role: true } : {}),
    } satisfies ServiceAccountInput);
  } catch (e) {
    if (e instanceof OAuthError && e.error === 'conflict') {
      console.error(`mimir-auth: ${e.description} Use rotate-secret to get a new secret.`);
      return 1;
    }
    throw e;
  }
  const { clientSecret, account } = created;
  if (o.json) {
    console.log(JSON.stringify({ ...account, client_id: account.clientId, client_secret: clientSecret }));
  } else if (clientSecret === undefined) {
    console.log(`Created service account ${account.clientId} with roles [${account.roles.join(', ')}].`);
    console.log(`It authenticates with private_key_jwt (RFC 7523): client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and a`);
    console.log(`client_assertion JWT signed with its key: iss = sub = ${account.clientId}, aud = ${hub.config.jwt.issuer}, a unique jti, exp at most 5 minutes ahead.`);
  } else {
    console.log(`Created service account ${account.clientId} with roles [${account.roles.join(', ')}].`);
    console.log('Its secret is shown only this once:\n');
    console.log(`  client_id:     ${account.clientId}`);
    console.log(`  client_secret: ${clientSecret}\n`);
    console.log(`Get a token: curl -u ${account.clientId}:<secret> -d grant_type=client_credentials ${hub.config.publicUrl}/auth/token`);
  }
  return 0;
}

export async function listAccounts(hub: Hub, o: { json?: boolean }): Promise<number> {
  const accounts = await hub.admin.listServiceAccounts(actor());
  if (o.json) {
    console.log(JSON.stringify(accounts, null, 2));
  } else if (accounts.length === 0) {
    console.log('No service accounts. Create one: mimir-auth service-accounts create --id pctx-service --roles developer');
  } else {
    console.log(['CLIENT ID'.padEnd(24), 'ROLES'.padEnd(20), 'STATUS'.padEnd(9), 'USER-CTX'.padEnd(9), 'EXCHANGE'.padEnd(9), 'CREATED'.padEnd(25), 'LAST USED'.padEnd(25), 'REQUESTS'].join(' '));
    for (const a of accounts) {
      console.log([a.clientId.padEnd(24), a.roles.join(',').slice(0, 20).padEnd(20), (a.disabled ? 'disabled' : 'active').padEnd(9),
        String(a.allowUserContext).padEnd(9), String(a.allowTokenExchange).padEnd(9), date(a.createdAt).padEnd(25), date(a.lastUsedAt).padEnd(25), String(a.requestCount ?? 0)].join(' '));
    }
  }
  return 0;
}

export async function rotateAccountSecret(hub: Hub, id: string, o: { json?: boolean }): Promise<number> {
  const rotated = await hub.admin.rotateServiceAccountSecret(actor(), id);
  if (o.json) {
    console.log(JSON.stringify({ client_id: id, client_secret: rotated.clientSecret, previous_secret_valid_until: rotated.previousValidUntil }));
  } else {
    console.log(`New secret for ${id} (shown only this once):\n\n  ${rotated.clientSecret}\n`);
    console.log(`The previous secret keeps working until ${date(rotated.previousValidUntil)}.`);
  }
  return 0;
}

export async function setAccountDisabled(hub: Hub, id: string, disabled: boolean): Promise<number> {
  await hub.admin.setServiceAccountDisabled(actor(), id, disabled);
  console.log(`${disabled ? 'Disabled' : 'Enabled'} service account ${id}.`);
  return 0;
}

export async function deleteAccount(hub: Hub, id: string): Promise<number> {
  await hub.admin.deleteServiceAccount(actor(), id);
  console.log(`Deleted service account ${id}.`);
  return 0;
}

export async function listClients(hub: Hub, o: { json?: boolean }): Promise<number> {
  const clients = await hub.admin.listClients(actor());
  if (o.json) {
    console.log(JSON.stringify(clients, null, 2));
    return 0;
  }
  console.log(['CLIENT ID'.padEnd(40), 'SOURCE'.padEnd(18), 'STATUS'.padEnd(8), 'NAME'].join(' '));
  for (const c of clients) {
    const revoked = 'revoked_at' in c;
    console.log([c.client_id.padEnd(40), c.source.padEnd(18), (revoked ? 'revoked' : 'active').padEnd(8), revoked ? '' : (c.client_name ?? '')].join(' '));
  }
  return 0;
}

export async function revokeClient(hub: Hub, id: string): Promise<number> {
  const done = await hub.admin.revokeClient(actor(), id);
  console.log(`Revoked OAuth client ${id}${done.refreshFamiliesRevoked ? ` and ${done.refreshFamiliesRevoked} refresh-token famil${done.refreshFamiliesRevoked === 1 ? 'y' : 'ies'} issued to it` : ''}.`);
  return 0;
}

/** `mimir-auth revoke session|access_token|signing_key ID`: the admin revocation endpoint's types. */
export async function revokeById(hub: Hub, type: string, id: string): Promise<number> {
  const done = await hub.admin.revoke(actor(), { type, id });
  console.log(`Revoked ${done.type.replace('_', ' ')} ${done.id} on every instance.`);
  return 0;
}

export async function rotateSigningKey(hub: Hub): Promise<number> {
  const rotated = await hub.admin.rotateSigningKey(actor());
  console.log(`New signing key ${rotated.kid} (${rotated.alg}) signs from now on.`);
  if (rotated.previous && rotated.previous !== rotated.kid && rotated.alg !== 'HS256') {
    console.log(`Key ${rotated.previous} stays published for ${hub.config.jwt.signingKeyOverlap} s so tokens it signed keep validating.`);
  }
  return 0;
}

export async function listSigningKeys(hub: Hub): Promise<number> {
  const { current, keys } = await hub.admin.listSigningKeys(actor());
  for (const k of keys) {
    const state = k.kid === current ? 'current' : k.removeAfter ? `retired, published until ${date(k.removeAfter)}` : 'published';
    console.log(`${k.kid}  ${k.alg}  created ${date(k.createdAt)}  ${state}`);
  }
  return 0;
}

/** `mimir-auth routes`: the route table the proxy decides with (MIMIR_RBAC_CONFIG's `routes`, else Mimir's own). */
export async function routesCommand(o: { json?: boolean }): Promise<number> {
  const { loadRbac } = await import('../rbac/policy.ts');
  const { DEFAULT_ROUTES } = await import('../rbac/routes.ts');
  const config = loadConfig();
  const rbac = await loadRbac(config.rbacConfig);
  const rules = rbac.config.routes ?? DEFAULT_ROUTES;
  const source = rbac.config.routes ? `the "routes" of MIMIR_RBAC_CONFIG (${config.rbacConfig!.trim().startsWith('{') ? 'inline' : config.rbacConfig})` : 'the default: the real Mimir\'s routes';
  if (o.json) {
    console.log(JSON.stringify({ source, routes: rules }, null, 2));
    return 0;
  }
  console.log(`Route table (${rules.length} rules, first match wins), from ${source}:`);
  const width = Math.max(...rules.map((r) => r.method.length));
  // RFC 9470 step-up, where a rule asks for it.
  const stepUp = (r: { method: string; maxAge?: number | undefined; acr?: string | undefined }) => [r.maxAge !== undefined ? `maxAge ${r.maxAge}s` : '', r.acr !== undefined ? `acr ${r.acr}` : ''].filter(Boolean).join(', ');
  for (const r of rules) console.log(`  ${r.method.padEnd(width)}  ${r.path.padEnd(44)}  ${r.permission ?? '(any authenticated caller)'}${stepUp(r) ? `  [step-up: ${stepUp(r)}]` : ''}`);
  console.log('MCP tools/call also needs mcp:* or mcp:tool:<name>. Paths of the hub itself (/auth/*, /.well-known/*, /health, /ready, the metrics) are never proxied.');
  return 0;
}

/**
 * The CLI's actor in the audit trail: `cli:<os user>`. Whoever runs it has the machine, and so
 * the store, in hand: it holds every permission.
 */
function actor(): CliActor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container running under an arbitrary uid): name the uid.
    user = `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return cliActor(user);
}
