/**
 * `mimir-auth`: the server and its admin. Admin commands work on the configured store
 * directly, with no server running, so the first admin key can be bootstrapped.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { cliActor, type ApiKeyInput, type CliActor, type ServiceAccountInput } from '../admin/service.ts';
import { ConfigError, envExample, loadConfig, redactedVariables, type Config } from '../config/index.ts';
import { OAuthError } from '../errors.ts';
import { openHub, type Hub } from '../hub.ts';
import { createLogger } from '../logger.ts';
import { serve } from './serve.ts';

export class UsageError extends Error {}

const HELP = `mimir-auth — the Mimir Auth Hub

Usage:
  mimir-auth serve                         start the hub (npm start)
  mimir-auth config [--json] [--example]   print the effective configuration (secrets redacted)
  mimir-auth keys create --name NAME [--roles r1,r2] [--scopes s1,s2] [--expires-in 30d] [--json]
  mimir-auth keys list [--json]
  mimir-auth keys revoke ID
  mimir-auth service-accounts create --id ID [--roles r1,r2] [--scopes s1,s2]
                                     [--allow-user-context] [--allow-token-exchange] [--json]
                                     [--jwks-file FILE | --jwks-uri URL]  (private_key_jwt: no secret)
  mimir-auth service-accounts list [--json]
  mimir-auth service-accounts rotate-secret ID [--json]
  mimir-auth service-accounts disable ID | enable ID | delete ID
  mimir-auth signing-keys list | rotate
  mimir-auth clients list [--json]         OAuth clients of the authorization server (MCP clients)
  mimir-auth clients revoke ID             a dynamic or metadata-document client: no more tokens
  mimir-auth revoke session|access_token|signing_key ID
                                     revoke by id on every instance (a session ends; a signing
                                     key's tokens stop working)
  mimir-auth providers check [--json]      fetch each IdP's discovery document and JWKS, report problems
  mimir-auth routes [--json]               the effective route table: which permission each upstream route needs
  mimir-auth doctor [--json]               check the configuration, store, keys, IdPs, the upstream Mimir and TLS
  mimir-auth storage copy --to URL [--json]
                                     copy every record of the configured store into another
                                     (sqlite:///path/mimir-auth.db, redis://…, postgres://…), verified
  mimir-auth token --service-account ID [--url URL] [--no-cache]
                                     print an access token (secret from MIMIR_SERVICE_ACCOUNT_SECRET)
  mimir-auth login [--url URL] [--no-browser] [--timeout SECONDS] [--scope S]
                                     sign in through the hub (browser, PKCE, loopback redirect)
  mimir-auth whoami                        who the stored credentials belong to
  mimir-auth token                         print a fresh access token of the signed-in user (for scripts)
  mimir-auth logout                        revoke at the hub and delete ~/.mimir/credentials
  mimir-auth version

Configuration comes from MIMIR_* environment variables and ./.env (see .env.example).`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(HELP);
        return 0;
      case 'version':
      case '--version':
        console.log((await import('../../package.json', { with: { type: 'json' } })).default.version);
        return 0;
      case 'serve':
        return await serve(loadConfig());
      case 'config':
        return configCommand(rest);
      case 'keys':
        return await withHub((hub) => keysCommand(hub, rest));
      case 'service-accounts':
        return await withHub((hub) => serviceAccountsCommand(hub, rest));
      case 'token':
        if (rest.some((a) => a === '--service-account' || a.startsWith('--service-account='))) {
          return await (await import('../client/cli-token.ts')).tokenCommand(rest);
        }
        return await userCommand('token', rest);
      case 'login':
      case 'whoami':
      case 'logout':
        return await userCommand(command, rest);
      case 'routes':
        return await routesCommand(rest);
      case 'doctor': {
        const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true });
        const { runDoctor, formatChecks } = await import('./doctor.ts');
        const checks = await runDoctor(loadConfig());
        console.log(values.json ? JSON.stringify(checks, null, 2) : formatChecks(checks));
        return checks.some((c) => c.verdict === 'problem') ? 1 : 0;
      }
      case 'providers': {
        if (rest[0] !== 'check') throw new UsageError('usage: mimir-auth providers check [--json]');
        const { checkProviders, formatReports } = await import('../oidc/check.ts');
        const reports = await checkProviders(loadConfig());
        console.log(rest.includes('--json') ? JSON.stringify(reports, null, 2) : formatReports(reports));
        return reports.every((r) => r.ok) ? 0 : 1;
      }
      case 'signing-keys':
        return await withHub((hub) => signingKeysCommand(hub, rest));
      case 'clients':
        return await withHub((hub) => clientsCommand(hub, rest));
      case 'revoke':
        return await withHub((hub) => revokeCommand(hub, rest));
      case 'storage': {
        const { storageCommand, StorageUsageError } = await import('./storage.ts');
        try {
          return await storageCommand(rest);
        } catch (e) {
          throw e instanceof StorageUsageError ? new UsageError(e.message) : e;
        }
      }
      default:
        throw new UsageError(`unknown command "${command}"; run mimir-auth help`);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error('mimir-auth: the configuration is not valid:');
      for (const line of e.problems) console.error(`  ${line}`);
      return 78; // EX_CONFIG
    }
    if (e instanceof UsageError) {
      console.error(`mimir-auth: ${e.message}`);
      return 64; // EX_USAGE
    }
    // The admin service's refusals: bad input is a usage error; unknown id, conflict: a failure.
    if (e instanceof OAuthError && e.status < 500) {
      console.error(`mimir-auth: ${e.description}`);
      return e.error === 'invalid_request' ? 64 : 1;
    }
    console.error(`mimir-auth: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

/** Commands of a person using the CLI against a running hub (no local configuration needed). */
async function userCommand(command: 'login' | 'whoami' | 'token' | 'logout', args: string[]): Promise<number> {
  const { login, whoami, logout, freshCredentials, LoginError } = await import('./login.ts');
  const { CredentialsError } = await import('./credentials.ts');
  const { values } = parseArgs({
    args, strict: true,
    options: { url: { type: 'string' }, 'no-browser': { type: 'boolean' }, timeout: { type: 'string' }, scope: { type: 'string' } },
  });
  try {
    switch (command) {
      case 'login': {
        const url = values.url ?? loadConfig().publicUrl;
        const timeout = values.timeout ? Number(values.timeout) : 300;
        if (!Number.isInteger(timeout) || timeout < 10) throw new UsageError('--timeout: a whole number of seconds, at least 10');
        await login({ url, openBrowser: !values['no-browser'], timeoutSeconds: timeout, out: process.stderr, ...(values.scope ? { scope: values.scope } : {}) });
        return 0;
      }
      case 'whoami':
        return await whoami(process.stdout);
      case 'token':
        // Only the token on stdout, so `$(mimir-auth token)` works.
        process.stdout.write(`${(await freshCredentials()).accessToken}\n`);
        return 0;
      case 'logout':
        return await logout(process.stderr);
    }
  } catch (e) {
    if (e instanceof LoginError || e instanceof CredentialsError) {
      console.error(`mimir-auth: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

async function withHub(fn: (hub: Hub) => Promise<number>): Promise<number> {
  const config = loadConfig();
  // The CLI prints results, not operational logs.
  const hub = await openHub(config, { logger: createLogger('warn', pino.destination(2)), auditFd: 2 });
  try {
    return await fn(hub);
  } finally {
    await hub.close();
  }
}

function configCommand(args: string[]): number {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, example: { type: 'boolean' } }, strict: true });
  if (values.example) {
    process.stdout.write(envExample());
    return 0;
  }
  const config: Config = loadConfig();
  const vars = redactedVariables(config);
  if (values.json) {
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

function csv(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function requireId(positionals: string[], what: string): string {
  const id = positionals[0];
  if (!id) throw new UsageError(`${what}: the id is missing`);
  return id;
}

const date = (s: number | undefined) => (s === undefined ? '-' : new Date(s * 1000).toISOString());

async function keysCommand(hub: Hub, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: { name: { type: 'string' }, roles: { type: 'string' }, scopes: { type: 'string' }, 'expires-in': { type: 'string' }, json: { type: 'boolean' } },
  });
  switch (sub) {
    case 'create': {
      if (!values.name) throw new UsageError('keys create: --name is required');
      const roles = csv(values.roles);
      warnUnknownRoles(hub, roles);
      const scopes = csv(values.scopes);
      const { key, record } = await hub.admin.createApiKey(actor(), {
        name: values.name, roles, ...(scopes.length ? { scopes } : {}), ...(values['expires-in'] ? { expires_in: values['expires-in'] } : {}),
      } satisfies ApiKeyInput);
      if (values.json) {
        console.log(JSON.stringify({ ...record, key }));
      } else {
        console.log(`Created API key ${record.id} (${record.name}) with roles [${record.roles.join(', ')}]${record.scopes ? ` narrowed to [${record.scopes.join(', ')}]` : ''}${record.expiresAt ? `, expires ${date(record.expiresAt)}` : ''}.`);
        console.log('Store it now: it is shown only this once.\n');
        console.log(`  ${key}\n`);
        console.log(`Use it: curl -H "X-API-Key: ${key.slice(0, 12)}…" ${hub.config.publicUrl}/auth/me`);
      }
      return 0;
    }
    case 'list': {
      const keys = await hub.admin.listApiKeys(actor());
      if (values.json) {
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
    case 'revoke': {
      const id = requireId(positionals, 'keys revoke');
      await hub.admin.revokeApiKey(actor(), id);
      console.log(`Revoked API key ${id}.`);
      return 0;
    }
    default:
      throw new UsageError('keys: use create, list or revoke');
  }
}

async function serviceAccountsCommand(hub: Hub, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true, strict: true,
    options: {
      id: { type: 'string' }, name: { type: 'string' }, roles: { type: 'string' }, scopes: { type: 'string' },
      'allow-user-context': { type: 'boolean' }, 'allow-token-exchange': { type: 'boolean' }, json: { type: 'boolean' },
      'jwks-file': { type: 'string' }, 'jwks-uri': { type: 'string' },
    },
  });
  switch (sub) {
    case 'create': {
      if (!values.id) throw new UsageError('service-accounts create: --id is required');
      const roles = csv(values.roles);
      warnUnknownRoles(hub, roles);
      const scopes = csv(values.scopes);
      const keys = keysOption(values['jwks-file'], values['jwks-uri']);
      let created: Awaited<ReturnType<Hub['admin']['createServiceAccount']>>;
      try {
        created = await hub.admin.createServiceAccount(actor(), {
          client_id: values.id, roles, ...(scopes.length ? { scopes } : {}), ...(values.name ? { name: values.name } : {}),
          allow_user_context: values['allow-user-context'] ?? false, allow_token_exchange: values['allow-token-exchange'] ?? false, ...keys,
        } satisfies ServiceAccountInput);
      } catch (e) {
        if (e instanceof OAuthError && e.error === 'conflict') {
          console.error(`mimir-auth: ${e.description} Use rotate-secret to get a new secret.`);
          return 1;
        }
        throw e;
      }
      const { clientSecret, account } = created;
      if (values.json) {
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
    case 'list': {
      const accounts = await hub.admin.listServiceAccounts(actor());
      if (values.json) {
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
    case 'rotate-secret': {
      const id = requireId(positionals, 'service-accounts rotate-secret');
      const rotated = await hub.admin.rotateServiceAccountSecret(actor(), id);
      if (values.json) {
        console.log(JSON.stringify({ client_id: id, client_secret: rotated.clientSecret, previous_secret_valid_until: rotated.previousValidUntil }));
      } else {
        console.log(`New secret for ${id} (shown only this once):\n\n  ${rotated.clientSecret}\n`);
        console.log(`The previous secret keeps working until ${date(rotated.previousValidUntil)}.`);
      }
      return 0;
    }
    case 'disable':
    case 'enable': {
      const id = requireId(positionals, `service-accounts ${sub}`);
      await hub.admin.setServiceAccountDisabled(actor(), id, sub === 'disable');
      console.log(`${sub === 'disable' ? 'Disabled' : 'Enabled'} service account ${id}.`);
      return 0;
    }
    case 'delete': {
      const id = requireId(positionals, 'service-accounts delete');
      await hub.admin.deleteServiceAccount(actor(), id);
      console.log(`Deleted service account ${id}.`);
      return 0;
    }
    default:
      throw new UsageError('service-accounts: use create, list, rotate-secret, disable, enable or delete');
  }
}

async function clientsCommand(hub: Hub, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { json: { type: 'boolean' } } });
  switch (sub) {
    case 'list': {
      const clients = await hub.admin.listClients(actor());
      if (values.json) {
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
    case 'revoke': {
      const id = requireId(positionals, 'clients revoke');
      const done = await hub.admin.revokeClient(actor(), id);
      console.log(`Revoked OAuth client ${id}${done.refreshFamiliesRevoked ? ` and ${done.refreshFamiliesRevoked} refresh-token famil${done.refreshFamiliesRevoked === 1 ? 'y' : 'ies'} issued to it` : ''}.`);
      return 0;
    }
    default:
      throw new UsageError('clients: use list or revoke ID');
  }
}

/** `mimir-auth revoke session|access_token|signing_key ID`: the admin revocation endpoint's types. */
async function revokeCommand(hub: Hub, args: string[]): Promise<number> {
  const [type, id, ...extra] = args;
  if (!type || !id || extra.length) throw new UsageError('usage: mimir-auth revoke session|access_token|signing_key ID');
  const done = await hub.admin.revoke(actor(), { type, id });
  console.log(`Revoked ${done.type.replace('_', ' ')} ${done.id} on every instance.`);
  return 0;
}

async function signingKeysCommand(hub: Hub, args: string[]): Promise<number> {
  const [sub] = args;
  if (sub === 'rotate') {
    const rotated = await hub.admin.rotateSigningKey(actor());
    console.log(`New signing key ${rotated.kid} (${rotated.alg}) signs from now on.`);
    if (rotated.previous && rotated.previous !== rotated.kid && rotated.alg !== 'HS256') {
      console.log(`Key ${rotated.previous} stays published for ${hub.config.jwt.signingKeyOverlap} s so tokens it signed keep validating.`);
    }
    return 0;
  }
  if (sub === 'list') {
    const { current, keys } = await hub.admin.listSigningKeys(actor());
    for (const k of keys) {
      const state = k.kid === current ? 'current' : k.removeAfter ? `retired, published until ${date(k.removeAfter)}` : 'published';
      console.log(`${k.kid}  ${k.alg}  created ${date(k.createdAt)}  ${state}`);
    }
    return 0;
  }
  throw new UsageError('signing-keys: use list or rotate');
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

function warnUnknownRoles(hub: Hub, roles: string[]): void {
  const unknown = roles.filter((r) => !hub.rbac.isKnownRole(r));
  if (unknown.length) {
    console.error(`mimir-auth: warning: role(s) ${unknown.join(', ')} are not in the RBAC configuration (known: ${Object.keys(hub.rbac.config.roleMappings).join(', ')})`);
  }
}

/** `mimir-auth routes`: the route table the proxy decides with (MIMIR_RBAC_CONFIG's `routes`, else Mimir's own). */
async function routesCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } }, strict: true });
  const { loadRbac } = await import('../rbac/policy.ts');
  const { DEFAULT_ROUTES } = await import('../rbac/routes.ts');
  const config = loadConfig();
  const rbac = await loadRbac(config.rbacConfig);
  const rules = rbac.config.routes ?? DEFAULT_ROUTES;
  const source = rbac.config.routes ? `the "routes" of MIMIR_RBAC_CONFIG (${config.rbacConfig!.trim().startsWith('{') ? 'inline' : config.rbacConfig})` : 'the default: the real Mimir\'s routes';
  if (values.json) {
    console.log(JSON.stringify({ source, routes: rules }, null, 2));
    return 0;
  }
  console.log(`Route table (${rules.length} rules, first match wins), from ${source}:`);
  const width = Math.max(...rules.map((r) => r.method.length));
  // RFC 9470 step-up, where a rule asks for it.
  const stepUp = (r: (typeof rules)[number]) => [r.maxAge !== undefined ? `maxAge ${r.maxAge}s` : '', r.acr !== undefined ? `acr ${r.acr}` : ''].filter(Boolean).join(', ');
  for (const r of rules) console.log(`  ${r.method.padEnd(width)}  ${r.path.padEnd(44)}  ${r.permission ?? '(any authenticated caller)'}${stepUp(r) ? `  [step-up: ${stepUp(r)}]` : ''}`);
  console.log('MCP tools/call also needs mcp:* or mcp:tool:<name>. Paths of the hub itself (/auth/*, /.well-known/*, /health, /ready, the metrics) are never proxied.');
  return 0;
}
