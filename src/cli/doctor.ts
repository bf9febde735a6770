/**
 * `mimir-auth doctor`: the seed's troubleshooting checks in one go — the configuration, the
 * store, the signing keys, each identity provider's discovery and JWKS, the upstream Mimir (does
 * it answer, is its own security on and does MIMIR_UPSTREAM_AUTH fit, do the route table's GET
 * routes exist there) and TLS. Each check is ok, a warning or a problem, with the fix.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { redactUrl } from '../config/index.ts';
import { openHub } from '../hub.ts';
import { checkProviders } from '../oidc/check.ts';
import { probeRoutes, upstreamSecurity } from '../proxy/upstream-probe.ts';
import { DEFAULT_ROUTES } from '../rbac/routes.ts';
import { createLogger } from '../logger.ts';

export type Verdict = 'ok' | 'warning' | 'problem';

export interface Check {
  name: string;
  verdict: Verdict;
  detail: string;
  /** What to do about a warning or a problem. */
  fix?: string;
}

export async function runDoctor(config: Config, fetchImpl: typeof fetch = fetch): Promise<Check[]> {
  const checks: Check[] = [{ name: 'configuration', verdict: 'ok', detail: `valid (${Object.values(config.variables).filter((v) => v !== undefined).length} variables set or defaulted)` }];
  let hub: Awaited<ReturnType<typeof openHub>> | undefined;
  try {
    hub = await openHub(config, { logger: createLogger('silent') });
    await hub.store.ping();
    checks.push({ name: 'store', verdict: 'ok', detail: `${hub.store.kind} answers` });
    checks.push({ name: 'signing keys', verdict: 'ok', detail: `${hub.keys.algorithm}, current kid ${hub.keys.currentKid}, ${hub.keys.list().length} published` });
  } catch (e) {
    checks.push({ name: 'store', verdict: 'problem', detail: (e as Error).message, fix: 'check MIMIR_TOKEN_STORAGE and its settings (MIMIR_DATA_DIR, MIMIR_REDIS_URL); the hub cannot start without its store' });
  } finally {
    await hub?.close().catch(() => undefined);
  }

  for (const report of await checkProviders(config, fetchImpl)) {
    checks.push({
      name: `identity provider ${report.id}`, verdict: report.ok ? 'ok' : 'problem',
      detail: report.ok ? report.notes.join('; ') : report.problems.join('; '),
      ...(report.ok ? {} : { fix: 'see `mimir-auth providers check` for each step' }),
    });
  }

  if (!config.upstreamUrl) {
    checks.push({ name: 'upstream', verdict: 'warning', detail: 'no upstream Mimir configured: the hub proxies nothing', fix: 'set MIMIR_UPSTREAM_URL to your Mimir (e.g. http://127.0.0.1:3000)' });
  } else {
    checks.push(...await upstreamChecks(config, fetchImpl));
  }

  if (config.tls) checks.push(tlsCheck(config.tls.certFile));
  else if (config.publicUrl.startsWith('http://') && !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:|\/|$)/.test(config.publicUrl)) {
    checks.push({ name: 'TLS', verdict: 'warning', detail: `the public URL ${config.publicUrl} is plain http`, fix: 'serve https (MIMIR_TLS_CERT_FILE/MIMIR_TLS_KEY_FILE, or a TLS proxy with MIMIR_PUBLIC_URL=https://… and MIMIR_TRUST_PROXY)' });
  }
  return checks;
}

async function upstreamChecks(config: Config, fetchImpl: typeof fetch): Promise<Check[]> {
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
  const { loadRbac } = await import('../rbac/policy.ts');
  const rbac = await loadRbac(config.rbacConfig);
  const rules = rbac.config.routes ?? DEFAULT_ROUTES;
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

function tlsCheck(certFile: string): Check {
  try {
    const cert = new X509Certificate(readFileSync(certFile));
    const days = Math.floor((Date.parse(cert.validTo) - Date.now()) / 86_400_000);
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
