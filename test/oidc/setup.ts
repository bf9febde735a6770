/**
 * A hub with real loopback IdPs configured through a providers file, and the sign-in driven by
 * plain HTTP (a cookie per hop, as a browser would carry it).
 */
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startHub, type StartOptions, type TestHub } from '../helpers/hub.ts';
import { startIdp, type IdpKind, type StartIdpOptions, type TestIdp } from '../helpers/idp.ts';

export const AUDIENCE = 'api://mimir';

export interface Rig {
  hub: TestHub;
  idps: Record<string, TestIdp>;
  close(): Promise<void>;
}

export interface RigOptions extends Omit<StartOptions, 'env'> {
  env?: Record<string, string>;
  /** Extra providers-file settings per IdP id (a function when they depend on the started IdP). */
  settings?: Record<string, Record<string, unknown> | ((idp: TestIdp, all: Record<string, TestIdp>) => Record<string, unknown>)>;
  /** IdP options per IdP id, over `idp`. */
  idpById?: Record<string, Partial<StartIdpOptions>>;
  idp?: Partial<StartIdpOptions>;
}

/** Starts one IdP per entry (`id: kind`) and a hub configured with all of them. */
export async function startRig(kinds: Record<string, IdpKind>, options: RigOptions = {}): Promise<Rig> {
  const port = await freePort();
  const hubUrl = `http://127.0.0.1:${port}`;
  const idps: Record<string, TestIdp> = {};
  for (const [id, kind] of Object.entries(kinds)) {
    idps[id] = await startIdp({
      kind, redirectUris: [`${hubUrl}/auth/callback`], postLogoutRedirectUris: [`${hubUrl}/auth/login`], audience: AUDIENCE, ...options.idp, ...options.idpById?.[id],
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'mimir-providers-'));
  const file = join(dir, 'providers.json');
  writeFileSync(file, JSON.stringify({
    providers: Object.entries(idps).map(([id, idp]) => ({
      id, kind: idp.kind, name: `${idp.kind} test`, issuer: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret,
      audience: AUDIENCE, ...settingsFor(options.settings?.[id], idp, idps),
    })),
  }));
  let hub: TestHub;
  try {
    hub = await startHub({
      ...options,
      env: {
        MIMIR_AUTH_PORT: String(port),
        MIMIR_AUTH_PROVIDERS_FILE: file,
        MIMIR_SESSION_COOKIE_SECURE: 'false',
        ...options.env,
      },
    });
  } catch (e) {
    // A hub that does not start must fail the file, not leave the IdPs listening until the runner's timeout.
    for (const idp of Object.values(idps)) await idp.close();
    throw e;
  }
  return {
    hub, idps,
    async close() {
      await hub.close();
      for (const idp of Object.values(idps)) await idp.close();
    },
  };
}

function settingsFor(s: RigOptions['settings'] extends Record<string, infer V> | undefined ? V | undefined : never, idp: TestIdp, all: Record<string, TestIdp>): Record<string, unknown> {
  return typeof s === 'function' ? s(idp, all) : s ?? {};
}

export function cookieFrom(res: Response, name: string): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair!.indexOf('=');
    if (pair!.slice(0, eq) === name) return decodeURIComponent(pair!.slice(eq + 1));
  }
  return undefined;
}

/** The Cookie header value carrying a session: the hub's effective cookie name (`__Host-` when secure). */
export function sessionCookie(hub: TestHub, value: string | undefined): string {
  return `${hub.config.session.cookie.name}=${value ?? ''}`;
}

export interface Started {
  /** The IdP authorization URL the hub redirected to. */
  authorizationUrl: string;
  binding: string;
}

export async function startLogin(hub: TestHub, provider: string, returnTo?: string): Promise<Started> {
  const q = new URLSearchParams({ provider, ...(returnTo !== undefined ? { returnTo } : {}) });
  const res = await fetch(`${hub.url}/auth/login?${q}`, { redirect: 'manual' });
  if (res.status !== 302) throw new Error(`login did not redirect: ${res.status} ${await res.text()}`);
  return { authorizationUrl: res.headers.get('location')!, binding: cookieFrom(res, hub.config.session.cookie.loginName)! };
}

export async function callback(hub: TestHub, url: URL | string, binding: string | undefined, accept = 'text/html'): Promise<Response> {
  const target = new URL(String(url));
  return fetch(`${hub.url}${target.pathname}${target.search}`, {
    redirect: 'manual',
    headers: { accept, ...(binding ? { cookie: `${hub.config.session.cookie.loginName}=${binding}` } : {}) },
  });
}

/** The whole sign-in by HTTP; returns the callback response and the session cookie it set. */
export async function signIn(rig: Rig, provider: string, options: { login?: string; accept?: string; returnTo?: string } = {}) {
  const started = await startLogin(rig.hub, provider, options.returnTo);
  const back = await rig.idps[provider]!.loginByHttp(started.authorizationUrl, options.login ?? 'jane');
  const res = await callback(rig.hub, back, started.binding, options.accept);
  return { res, session: cookieFrom(res, rig.hub.config.session.cookie.name), back, started };
}

export async function me(hub: TestHub, headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${hub.url}/auth/me`, { headers });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/**
 * The user's browser at a hub authorization URL, signed in with `session`: consent allowed when
 * asked; returns where the hub sent it.
 */
export async function approve(rig: Rig, session: string, url: URL | string): Promise<URL> {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie(rig.hub, session) } });
  let location = res.headers.get('location');
  if (res.status === 200) {
    const page = await res.text();
    const id = /name="request" value="([^"]+)"/.exec(page)![1]!;
    const decided = await fetch(`${rig.hub.url}/auth/authorize/decision`, {
      method: 'POST', redirect: 'manual',
      headers: { cookie: sessionCookie(rig.hub, session), 'content-type': 'application/x-www-form-urlencoded', origin: rig.hub.url },
      body: new URLSearchParams({ request: id, decision: 'allow' }).toString(),
    });
    location = decided.headers.get('location');
  }
  assert.ok(location, `the hub answered ${res.status} without a redirect`);
  return new URL(location, rig.hub.url);
}
