/**
 * `mimir-auth doctor`: the seed's troubleshooting checks in one go — the configuration (and
 * MIMIR_* names nothing reads), the RBAC configuration, the store, the signing keys, each
 * identity provider's discovery and JWKS, the clock against the IdPs' and the upstream's, the
 * upstream Mimir (does it answer, is its own security on and does MIMIR_UPSTREAM_AUTH fit, do the
 * route table's GET routes exist there) and TLS. Each check is ok, a warning or a problem, with the fix.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, redactUrl, type Config, type LoadOptions } from '../config/index.ts';
import { describeUnknown, unknownVariables } from '../config/unknown.ts';
import { clientOptionsFromEnv, type ClientEnvOptions } from '../client/config.ts';
import { KeyRing } from '../jwt/keys.ts';
import { checkProviders } from '../oidc/check.ts';
import { loadProviders } from '../oidc/providers.ts';
import { probeRoutes, upstreamSecurity } from '../proxy/upstream-probe.ts';
import { loadRbac, type Rbac } from '../rbac/policy.ts';
import { DEFAULT_ROUTES } from '../rbac/routes.ts';
import { authenticatesWithKey, ServiceAccounts } from '../service-accounts/index.ts';
import { createStore } from '../storage/index.ts';

export type Verdict = 'ok' | 'warning' | 'problem';

export interface Check {
  name: string;
  verdict: Verdict;
  detail: string;
  /** What to do about a warning or a problem. */
  fix?: string;
}

export interface DoctorOptions {
  /** The environment (default process.env) and where `.env` is read. */
  env?: Record<string, string | undefined>;
  load?: LoadOptions;
  fetch?: typeof fetch;
  now?: () => number;
}

/**
 * Clock skew against a server's `Date` header (1 s resolution, plus the round trip): beyond
 * {@link SKEW_WARNING} it is worth fixing, beyond {@link SKEW_PROBLEM} — the 30 s tolerance the
 * hub allows JWT assertions — tokens start to look expired or not yet valid.
 */
const SKEW_WARNING = 5;
const SKEW_PROBLEM = 30;

/**
 * Every check, in order. Given a loaded Config, the configuration check only looks for unknown
 * variables (in `o.env`, default none).
 *
 * @example
 * const checks = await runDoctor(); // the process's configuration
 * if (checks.some((c) => c.verdict === 'problem')) process.exitCode = 1;
 */
export async function runDoctor(given: Config | DoctorOptions = {}, fetchOverride?: typeof fetch): Promise<Check[]> {
  const loaded = 'variables' in given ? given : undefined;
  const o: DoctorOptions = loaded ? { env: {} } : given as DoctorOptions;
  const fetchImpl = fetchOverride ?? o.fetch ?? fetch;
  const now = o.now ?? Date.now;
  let config: Config;
  try {
    config = loaded ?? loadConfig(o.env, o.load);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return [{ name: 'configuration', verdict: 'problem', detail: e.problems.join('; '), fix: 'correct the variables named (mimir-auth config --example lists every variable and what it accepts); the other checks need a valid configuration' }];
  }
  const checks: Check[] = [];
  const unknown = unknownVariables(o.env, loaded ? { dotenv: false } : o.load);
  const set = Object.values(config.variables).filter((v) => v !== undefined).length;
  checks.push(unknown.length
    ? { name: 'configuration', verdict: 'warning', detail: `valid (${set} variables set or defaulted), but ${unknown.map(describeUnknown).join('; ')}`, fix: 'rename or remove the variables named: the hub ignores them' }
    : { name: 'configuration', verdict: 'ok', detail: `valid (${set} variables set or defaulted)` });

  let rbac: Rbac | undefined;
  try {
    rbac = await loadRbac(config.rbacConfig, fetchImpl);
    const roles = Object.keys(rbac.config.roleMappings);
    checks.push({ name: 'RBAC', verdict: 'ok', detail: `${roles.length} roles (${roles.join(', ')}) from ${config.rbacConfig ? (config.rbacConfig.trim().startsWith('{') ? 'the inline MIMIR_RBAC_CONFIG' : config.rbacConfig) : 'Mimir\'s default rbac.json'}` });
  } catch (e) {
    checks.push({ name: 'RBAC', verdict: 'problem', detail: (e as Error).message, fix: 'correct MIMIR_RBAC_CONFIG: a path or https URL of a rbac.json in Mimir\'s format, or inline JSON; the hub does not start without it' });
  }

  let client: ClientEnvOptions = {};
  try {
    client = clientOptionsFromEnv(o.env);
  } catch (e) {
    checks.push({ name: 'client configuration', verdict: 'problem', detail: (e as Error).message, fix: 'correct the variable named (read by mimir-auth token and the client library)' });
  }
  checks.push(...await storeChecks(config, client, now));

  const skews: Array<{ server: string; seconds: number }> = [];
  const clock = async (server: string, url: string) => {
    const seconds = await skewAgainst(url, fetchImpl, now);
    if (seconds !== undefined) skews.push({ server, seconds });
  };
  let providersValid = true;
  try {
    loadProviders(config);
  } catch (e) {
    providersValid = false;
    checks.push({ name: 'identity providers', verdict: 'problem', detail: e instanceof ConfigError ? e.problems.join('; ') : (e as Error).message, fix: 'correct the variables or the MIMIR_AUTH_PROVIDERS_FILE entries named' });
  }
  if (providersValid) {
    for (const report of await checkProviders(config, fetchImpl)) {
      checks.push({
        name: `identity provider ${report.id}`, verdict: report.ok ? 'ok' : 'problem',
        detail: report.ok ? report.notes.join('; ') : report.problems.join('; '),
        ...(report.ok ? {} : { fix: 'correct the issuer (MIMIR_OAUTH_ISSUER, or the entry\'s issuer in MIMIR_AUTH_PROVIDERS_FILE) or the endpoint named; `mimir-auth providers check` shows each step' }),
      });
      if (report.ok) await clock(`identity provider ${report.id}`, `${report.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    }
  }

  let upstream: Check[];
  if (!config.upstreamUrl) {
    upstream = [{ name: 'upstream', verdict: 'warning', detail: 'no upstream Mimir configured: the hub proxies nothing', fix: 'set MIMIR_UPSTREAM_URL to your Mimir (e.g. http://127.0.0.1:3000)' }];
  } else {
    upstream = await upstreamChecks(config, rbac, fetchImpl);
    if (upstream[0]?.verdict === 'ok') await clock('the upstream', new URL('/health', config.upstreamUrl).toString());
  }
  checks.push(clockCheck(skews), ...upstream);

  if (config.tls) checks.push(tlsCheck(config.tls.certFile, now));
  else if (config.publicUrl.startsWith('http://') && !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(config.publicUrl)) {
    checks.push({ name: 'TLS', verdict: 'warning', detail: `the public URL ${config.publicUrl} is plain http`, fix: 'serve https (MIMIR_TLS_CERT_FILE/MIMIR_TLS_KEY_FILE, or a TLS proxy with MIMIR_PUBLIC_URL=https://… and MIMIR_TRUST_PROXY)' });
  }
  return checks;
}

/**
 * The store answers, and the signing keys open (generated on a first run, as the hub does); with
 * MIMIR_SERVICE_ACCOUNT_ID (PCTX's), the seed's "PCTX can't authenticate": does the account exist,
 * is it enabled, and is MIMIR_SERVICE_ACCOUNT_SECRET its secret.
 */
async function storeChecks(config: Config, client: ClientEnvOptions, now: () => number): Promise<Check[]> {
  let store: Awaited<ReturnType<typeof createStore>>;
  try {
    store = await createStore({ kind: config.storage.kind, sqlitePath: config.storage.sqlitePath, redis: config.storage.redis, postgres: config.storage.postgres });
    await store.ping();
  } catch (e) {
    return [{ name: 'store', verdict: 'problem', detail: (e as Error).message, fix: 'check MIMIR_TOKEN_STORAGE and its settings (MIMIR_DATA_DIR, MIMIR_REDIS_URL, MIMIR_DATABASE_URL); the hub cannot start without its store' }];
  }
  const checks: Check[] = [{ name: 'store', verdict: 'ok', detail: `${store.kind} answers` }];
  try {
    const keys = await KeyRing.open(store, config, { now });
    checks.push({ name: 'signing keys', verdict: 'ok', detail: `${keys.algorithm}, current kid ${keys.currentKid}, ${keys.list().length} published` });
  } catch (e) {
    checks.push({ name: 'signing keys', verdict: 'problem', detail: (e as Error).message, fix: 'MIMIR_JWT_SECRET must be the secret the stored keys were sealed with (every hub on a shared store sets the same), and MIMIR_JWT_ALGORITHM one of RS256, ES256, EdDSA, HS256' });
  }
  try {
    if (client.serviceAccountId) checks.push(await serviceAccountCheck(new ServiceAccounts(store, { now }), client.serviceAccountId, client.serviceAccountSecret));
  } finally {
    await store.close().catch(() => undefined);
  }
  return checks;
}

async function serviceAccountCheck(accounts: ServiceAccounts, id: string, secret: string | undefined): Promise<Check> {
  const name = 'service account';
  const account = await accounts.get(id);
  if (!account) {
    return { name, verdict: 'problem', detail: `MIMIR_SERVICE_ACCOUNT_ID: no service account "${id}" in this store`, fix: `create it: mimir-auth service-accounts create --id ${id} --roles developer (or correct MIMIR_SERVICE_ACCOUNT_ID)` };
  }
  if (account.disabled) return { name, verdict: 'problem', detail: `the service account "${id}" is disabled`, fix: `mimir-auth service-accounts enable ${id}` };
  if (authenticatesWithKey(account)) return { name, verdict: 'ok', detail: `"${id}" exists, enabled, roles [${account.roles.join(', ')}]; it authenticates with private_key_jwt (MIMIR_SERVICE_ACCOUNT_SECRET is not used)` };
  if (secret === undefined) {
    return { name, verdict: 'warning', detail: `"${id}" exists, enabled, roles [${account.roles.join(', ')}]; MIMIR_SERVICE_ACCOUNT_SECRET is not set, so its secret was not checked`, fix: 'set MIMIR_SERVICE_ACCOUNT_SECRET where the client (PCTX) runs' };
  }
  // Compared as the token endpoint does (hashes, constant time); the secret is never shown.
  if (!(await accounts.authenticate(id, secret))) {
    return { name, verdict: 'problem', detail: `MIMIR_SERVICE_ACCOUNT_SECRET is not the secret of "${id}" (nor its previous one within the grace period)`, fix: `set the secret it was given, or make a new one: mimir-auth service-accounts rotate-secret ${id}` };
  }
  return { name, verdict: 'ok', detail: `"${id}" exists, enabled, roles [${account.roles.join(', ')}]; MIMIR_SERVICE_ACCOUNT_SECRET matches` };
}

/** Seconds this machine's clock is ahead of the server's (negative: behind), from its Date header. */
async function skewAgainst(url: string, fetchImpl: typeof fetch, now: () => number): Promise<number | undefined> {
  try {
    const sent = now();
    const res = await fetchImpl(url, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    const date = Date.parse(res.headers.get('date') ?? '');
    if (Number.isNaN(date)) return undefined;
    // The server read its clock somewhere in the round trip: compare with its middle.
    return Math.round(((sent + now()) / 2 - date) / 1000);
  } catch {
    return undefined;
  }
}

function clockCheck(skews: ReadonlyArray<{ server: string; seconds: number }>): Check {
  if (skews.length === 0) return { name: 'clock', verdict: 'ok', detail: 'not compared: no identity provider or upstream answered with a Date header' };
  const worst = skews.reduce((a, b) => (Math.abs(b.seconds) > Math.abs(a.seconds) ? b : a));
  const said = skews.map((s) => `${s.server}: ${s.seconds === 0 ? 'in step' : `${Math.abs(s.seconds)} s ${s.seconds > 0 ? 'ahead' : 'behind'}`}`).join('; ');
  const off = Math.abs(worst.seconds);
  if (off > SKEW_PROBLEM) return { name: 'clock', verdict: 'problem', detail: `this machine's clock is ${off} s ${worst.seconds > 0 ? 'ahead of' : 'behind'} ${worst.server} (${said}): beyond the ${SKEW_PROBLEM} s tolerance, tokens look expired or not yet valid`, fix: 'synchronise the clocks (NTP: timedatectl set-ntp true, chrony) on this machine and the server named' };
  if (off > SKEW_WARNING) return { name: 'clock', verdict: 'warning', detail: `this machine's clock is ${off} s ${worst.seconds > 0 ? 'ahead of' : 'behind'} ${worst.server} (${said})`, fix: 'synchronise the clocks (NTP) before the skew reaches 30 s' };
  return { name: 'clock', verdict: 'ok', detail: `within ${SKEW_WARNING} s of ${skews.map((s) => s.server).join(' and ')}` };
}

async function upstreamChecks(config: Config, rbac: Rbac | undefined, fetchImpl: typeof fetch): Promise<Check[]> {
  const url = config.upstreamUrl!;
  const shown = redactUrl(url).replace(/\/$/, '');
  try {
    const res = await fetchImpl(new URL('/health', url), { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    if (!res.ok) return [{ name: 'upstream', verdict: 'problem', detail: `${shown}/health answered HTTP ${res.status}`, fix: 'check that MIMIR_UPSTREAM_URL points at Mimir and that Mimir is healthy' }];
  } catch (e) {
    return [{ name: 'upstream', verdict: 'problem', detail: `${shown} cannot be reached: ${(e as Error).message}`, fix: 'start Mimir, or correct MIMIR_UPSTREAM_URL' }];
  }
  const checks: Check[] = [{ name: 'upstream', verdict: 'ok', detail: `${shown} answers` }];
  const security = await upstreamSecurity(url, fetchImpl);
  const mode = config.upstreamAuth.mode;
  if (security === 'on' && mode !== 'mimir-jwt') {
    checks.push({ name: 'upstream security', verdict: 'problem', detail: `Mimir's own security is on (MIMIR_ENABLE_SECURITY) but MIMIR_UPSTREAM_AUTH is ${mode}: Mimir refuses what the hub forwards`, fix: 'set MIMIR_UPSTREAM_AUTH=mimir-jwt and MIMIR_UPSTREAM_JWT_SECRET to the MIMIR_JWT_SECRET Mimir runs with' });
  } else if (security === 'off' && mode === 'mimir-jwt') {
    checks.push({ name: 'upstream security', verdict: 'warning', detail: 'MIMIR_UPSTREAM_AUTH is mimir-jwt but Mimir\'s security is off: it ignores the tokens and reads the X-User-* headers', fix: 'turn Mimir\'s security on, or set MIMIR_UPSTREAM_AUTH=none' });
  } else if (security === 'off') {
    checks.push({ name: 'upstream security', verdict: 'ok', detail: 'Mimir\'s own security is off: it trusts the X-User-* headers, so it must be reachable only through the hub (bind it to 127.0.0.1 or a private network)' });
  } else if (security === 'on') {
    checks.push({ name: 'upstream security', verdict: 'ok', detail: 'Mimir\'s own security is on and the hub mints the tokens it reads (mimir-jwt)' });
  } else {
    checks.push({ name: 'upstream security', verdict: 'warning', detail: 'Mimir\'s GET /auth/status did not say whether its security is on', fix: 'check that MIMIR_UPSTREAM_URL points at Mimir itself' });
  }
  // A broken RBAC configuration is its own problem above; the routes are then Mimir's.
  const rules = rbac?.config.routes ?? DEFAULT_ROUTES;
  const probes = await probeRoutes(url, rules, fetchImpl);
  const missing = probes.filter((p) => p.outcome === 'missing');
  const failed = probes.filter((p) => p.outcome === 'error');
  checks.push({
    name: 'route coverage',
    verdict: missing.length || failed.length ? 'warning' : 'ok',
    detail: `${probes.length - missing.length - failed.length} of ${probes.length} GET routes of the route table exist upstream`
      + (missing.length ? `; missing: ${missing.map((p) => p.rule.path).join(', ')}` : '') + (failed.length ? `; no answer: ${failed.map((p) => p.rule.path).join(', ')}` : '')
      + '; other methods are not probed (the request could change data)',
    ...(missing.length ? { fix: 'a newer or older Mimir: check `mimir-auth routes` against it and adjust the "routes" of MIMIR_RBAC_CONFIG' } : {}),
  });
  return checks;
}

function tlsCheck(certFile: string, now: () => number): Check {
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const days = Math.floor((Date.parse(cert.validTo) - now()) / 86_400_000);
    if (days < 0) return { name: 'TLS', verdict: 'problem', detail: `the certificate ${certFile} expired on ${cert.validTo}`, fix: 'renew it (MIMIR_TLS_CERT_FILE)' };
    if (days < 14) return { name: 'TLS', verdict: 'warning', detail: `the certificate expires in ${days} days (${cert.validTo})`, fix: 'renew it soon' };
    return { name: 'TLS', verdict: 'ok', detail: `certificate for ${cert.subject.replace(/\n/g, ', ')} valid until ${cert.validTo}` };
  } catch (e) {
    return { name: 'TLS', verdict: 'problem', detail: `MIMIR_TLS_CERT_FILE cannot be read as a certificate: ${(e as Error).message}`, fix: 'point MIMIR_TLS_CERT_FILE at a PEM certificate' };
  }
}

export function formatChecks(checks: readonly Check[]): string {
  const mark: Record<Verdict, string> = { ok: 'ok     ', warning: 'warning', problem: 'problem' };
  return checks.map((c) => `${mark[c.verdict]}  ${c.name}: ${c.detail}${c.fix ? `\n           fix: ${c.fix}` : ''}`).join('\n');
}
