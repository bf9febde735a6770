/**
 * Issue 20, goals 3 and 4, on the hub as users start it (`mimir-auth serve`, bench/lib/serve.ts).
 *
 * Goal 3 (client_credentials), for RS256, ES256 and EdDSA: the hub started with that
 * MIMIR_JWT_ALGORITHM, oidc-provider signing its JWT access tokens with the same algorithm
 * (BENCH_IDP_ALG). Per round: oidc-provider, then the hub (req/s ratio within the pair), then the
 * ceiling line answering the hub's own token response (bare node:http, same headers and body: the
 * HTTP cost any server pays). Goals: hub req/s ≥ 1× oidc-provider's; (hub CPU per token − ceiling
 * CPU per request) ≤ 1.25× one jose signature, measured as CPU time per SignJWT.sign of a token
 * with the hub's header and claims, in a child process (the ceiling's).
 * Each algorithm on the embedded default (SQLite); RS256 also on Redis and PostgreSQL.
 *
 * Goal 4 (introspection), on each store's RS256 hub: oidc-provider introspecting its opaque access
 * token, then the hub introspecting a hub JWT; again oidc-provider, then the hub introspecting one
 * of its refresh tokens. Goal: the hub's CPU per request ≤ 1/3 of oidc-provider's, within the pair.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { LoadResult, LoadSpec } from './load.ts';
import type { Goal, Row } from './report.ts';
import { ceilingFor, measured, serve, type ServeOptions, type Served, type StoreKind } from './serve.ts';
import { startTarget, type Target } from './targets.ts';

const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
const FORM = 'application/x-www-form-urlencoded';
/** Signatures timed for "one jose signature" (after 200 unmeasured). */
const SIGNATURES = 2000;

export interface TokenOptions extends ServeOptions { stores: StoreKind[]; connections: number }

type Spec = Omit<LoadSpec, 'seconds' | 'connections'>;

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const post = (url: string, authorization: string, body: string): Spec => ({ url, method: 'POST', headers: { 'content-type': FORM, authorization }, body });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** A hub run that got no answer at all (the hub stalled): its goal is failed, with this note. */
const STALLED = 'the hub answered no request during a whole run (it stalled)';
const stalled = (rs: LoadResult[]) => rs.some((r) => r.requests === 0);
const pick = (rs: LoadResult[]) => ({ ...[...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!, ...(rs.every((r) => r.cpuUs !== undefined) ? { cpuUs: median(rs.map((r) => r.cpuUs!)) } : {}) });

/** Undefined when the line answers as it should now, else why it is not measured. */
async function probe(spec: Spec, ok: (status: number, body: string) => boolean): Promise<string | undefined> {
  const res = await fetch(spec.url, { method: spec.method ?? 'GET', headers: spec.headers ?? {}, ...(spec.body !== undefined ? { body: spec.body } : {}) });
  const body = await res.text();
  return ok(res.status, body) ? undefined : `n/a — HTTP ${res.status} ${body.slice(0, 120)}`;
}

export async function tokenLines(o: TokenOptions): Promise<{ rows: Row[]; goals: Goal[] }> {
  const rows: Row[] = [];
  const goals: Goal[] = [];
  const run = (spec: Spec, target: { pid: number }) => measured({ ...spec, connections: o.connections, pid: target.pid }, o);
  for (const alg of ALGORITHMS) {
    const stores = alg === 'RS256' ? o.stores : o.stores.filter((s) => s === 'sqlite');
    if (!stores.length) continue;
    let idp: Target | undefined;
    try {
      idp = await startTarget('oidc-provider', { env: { BENCH_IDP_ALG: alg } });
      const idpAuth = basic(String(idp.info.clientId), String(idp.info.clientSecret));
      const idpCc = post(`${idp.url}/token`, idpAuth, 'grant_type=client_credentials');
      let signUs: number | undefined;
      for (const store of stores) {
        const label = `serve (${store}) client_credentials ${alg}`;
        let served: Served | undefined;
        let ceiling: Target | undefined;
        try {
          served = await serve(store, o, { env: { MIMIR_JWT_ALGORITHM: alg }, extras: alg === 'RS256' });
          const issued = decodeProtectedHeader(served.jwt);
          if (issued.alg !== alg) throw new Error(`the hub signed with ${issued.alg}, not ${alg}`);
          const hubCc = post(`${served.url}/auth/token`, basic(served.account.clientId, served.account.clientSecret), 'grant_type=client_credentials');
          ceiling = await ceilingFor(hubCc.url, hubCc.headers!, { method: 'POST', body: hubCc.body! });
          if (signUs === undefined) {
            signUs = await ceiling.call<number>('sign-cost', { alg, header: issued, claims: decodeJwt(served.jwt), count: SIGNATURES });
            o.log(`one jose ${alg} signature of a token shaped like the hub's: ${signUs.toFixed(1)} µs CPU (${SIGNATURES} signatures, in a child process)`);
            goals.push({ n: 3, what: `one jose ${alg} signature, CPU (${SIGNATURES} SignJWT.sign)`, value: signUs, unit: 'µs', reference: true });
          }
          const runs = { idp: [] as LoadResult[], hub: [] as LoadResult[], ceiling: [] as LoadResult[] };
          for (let round = 0; round < o.rounds; round++) {
            runs.idp.push(await run(idpCc, idp));
            runs.hub.push(await run(hubCc, served));
            runs.ceiling.push(await run({ ...hubCc, url: `${ceiling.url}/auth/token` }, ceiling));
            const [i, h, c] = [runs.idp.at(-1)!, runs.hub.at(-1)!, runs.ceiling.at(-1)!];
            o.log(`${label}: ${Math.round(h.rps)} req/s, CPU ${h.cpuUs?.toFixed(1) ?? '?'} µs/token; oidc-provider ${Math.round(i.rps)} req/s, CPU ${i.cpuUs?.toFixed(1) ?? '?'} µs; ceiling CPU ${c.cpuUs?.toFixed(1) ?? '?'} µs/req${h.failures ? `; ${h.failures} failed` : ''}`);
          }
          rows.push({ id: `oidc-cc-${alg}-${store}`, label: `oidc-provider client_credentials ${alg}`, result: pick(runs.idp) });
          rows.push({ id: `serve-cc-${alg}-${store}`, label, result: pick(runs.hub) });
          rows.push({ id: `ceiling-cc-${alg}-${store}`, label: `ceiling for ${label.replace('serve ', '')}`, result: pick(runs.ceiling) });
          goals.push({ n: 3, what: `${label}: req/s vs oidc-provider`, value: median(runs.hub.map((h, i) => h.rps / runs.idp[i]!.rps)), min: 1, unit: '×', ...(stalled(runs.hub) ? { na: STALLED } : {}) });
          const cpu = runs.hub.every((h, i) => h.cpuUs !== undefined && runs.ceiling[i]!.cpuUs !== undefined);
          const hubUs = cpu ? median(runs.hub.map((h) => h.cpuUs!)) : undefined;
          const ceilUs = cpu ? median(runs.ceiling.map((c) => c.cpuUs!)) : undefined;
          goals.push({
            n: 3, what: `serve (${store}) ${alg}: (CPU/token ${hubUs?.toFixed(0) ?? '?'} − ceiling ${ceilUs?.toFixed(0) ?? '?'} µs) / signature ${signUs.toFixed(0)} µs`,
            value: cpu ? median(runs.hub.map((h, i) => (h.cpuUs! - runs.ceiling[i]!.cpuUs!) / signUs!)) : stalled(runs.hub) ? Number.POSITIVE_INFINITY : undefined, max: 1.25, unit: '×',
            ...(stalled(runs.hub) ? { na: STALLED } : {}),
          });
          if (alg === 'RS256') {
            const intro = await introspection(o, idp, idpAuth, served, run);
            rows.push(...intro.rows);
            goals.push(...intro.goals);
          }
        } catch (e) {
          const na = `n/a — ${(e as Error).message.split('\n')[0]!.slice(0, 160)}`;
          o.log(`${label}: ${na}`);
          rows.push({ id: `serve-cc-${alg}-${store}`, label, na });
          goals.push({ n: 3, what: `${label}`, value: undefined, min: 1, unit: '×', na });
        } finally {
          await ceiling?.stop();
          await served?.stop();
        }
      }
    } finally {
      await idp?.stop();
    }
  }
  return { rows, goals };
}

/** Goal 4 on one served hub: each hub line right after oidc-provider's, CPU per request compared within the pair. */
async function introspection(o: TokenOptions, idp: Target, idpAuth: string, served: Served, run: (spec: Spec, target: { pid: number }) => Promise<LoadResult>): Promise<{ rows: Row[]; goals: Goal[] }> {
  const rows: Row[] = [];
  const goals: Goal[] = [];
  const store = served.store;
  const opaque = await fetch(`${idp.url}/token`, { method: 'POST', headers: { 'content-type': FORM, authorization: idpAuth }, body: new URLSearchParams({ grant_type: 'client_credentials', resource: String(idp.info.opaque) }).toString() });
  const idpIntro = post(`${idp.url}/token/introspection`, idpAuth, `token=${String(((await opaque.json()) as { access_token?: string }).access_token)}`);
  const rsAuth = basic(served.resourceServer!.clientId, served.resourceServer!.clientSecret);
  const lines = [
    { id: 'jwt', what: 'hub JWT', spec: post(`${served.url}/auth/introspect`, rsAuth, `token=${served.jwt}`) },
    { id: 'refresh', what: 'refresh token (opaque)', spec: post(`${served.url}/auth/introspect`, rsAuth, `token=${served.refreshToken!}`) },
  ];
  const active = (s: number, b: string) => s === 200 && b.includes('"active":true');
  const idpNa = await probe(idpIntro, active);
  for (const line of lines) {
    const label = `serve (${store}) introspection, ${line.what}`;
    const na = idpNa ?? await probe(line.spec, active);
    if (na) {
      o.log(`${label}: ${na}`);
      rows.push({ id: `serve-introspect-${line.id}-${store}`, label, na });
      goals.push({ n: 4, what: `${label}: CPU/req vs oidc-provider`, value: undefined, max: 1 / 3, unit: '×', na });
      continue;
    }
    const idpRuns: LoadResult[] = [];
    const hubRuns: LoadResult[] = [];
    for (let round = 0; round < o.rounds; round++) {
      idpRuns.push(await run(idpIntro, idp));
      hubRuns.push(await run(line.spec, served));
      const [i, h] = [idpRuns.at(-1)!, hubRuns.at(-1)!];
      o.log(`${label}: ${Math.round(h.rps)} req/s, CPU ${h.cpuUs?.toFixed(1) ?? '?'} µs/req; oidc-provider ${Math.round(i.rps)} req/s, CPU ${i.cpuUs?.toFixed(1) ?? '?'} µs/req${h.failures ? `; ${h.failures} failed` : ''}`);
    }
    rows.push({ id: `oidc-introspect-${line.id}-${store}`, label: 'oidc-provider introspection, opaque access token', result: pick(idpRuns) });
    rows.push({ id: `serve-introspect-${line.id}-${store}`, label, result: pick(hubRuns) });
    const cpu = hubRuns.every((h, i) => h.cpuUs !== undefined && idpRuns[i]!.cpuUs !== undefined);
    goals.push({
      n: 4, what: `${label}: CPU/req vs oidc-provider`, max: 1 / 3, unit: '×',
      value: cpu ? median(hubRuns.map((h, i) => h.cpuUs! / idpRuns[i]!.cpuUs!)) : stalled(hubRuns) ? Number.POSITIVE_INFINITY : undefined,
      ...(stalled(hubRuns) ? { na: STALLED } : {}),
    });
  }
  return { rows, goals };
}
