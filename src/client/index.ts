/**
 * `mimir-auth-hub/client`: what a downstream service (PCTX, an agent) uses to call Mimir
 * through the hub, in the seed's three flows — API key, token forwarding, service account.
 * In service-account mode the access token (RFC 6749 §4.4 client_credentials) is cached and
 * renewed before it expires, once for any number of concurrent callers; a 401 `token_expired`
 * renews it and retries the request once.
 *
 * @example
 * const mimir = createMimirClient({ url: 'https://mimir.example', mode: 'service-account',
 *   serviceAccountId: 'pctx-service', serviceAccountSecret: secret });
 * const res = await mimir.fetch('/api/nodes/42', { user: { id: 'alice' } });
 */
import { clientOptionsFromEnv, type AuthMode, type ClientEnvOptions } from './config.ts';

export type { AuthMode } from './config.ts';
export { clientOptionsFromEnv } from './config.ts';

export interface ClientOptions extends ClientEnvOptions {
  /** Defaults to `globalThis.fetch`; inject to add tracing, a proxy or loopback tests. */
  fetch?: typeof fetch;
  now?: () => number;
  /** Renew when this many seconds or less remain (capped at a fifth of the lifetime). Default 60. */
  renewBeforeSeconds?: number;
  /** Read MIMIR_* variables for anything not given here (default true). */
  fromEnv?: boolean;
  userEmailHeader?: string;
  userRolesHeader?: string;
}

/** Who the downstream service acts for on one request. */
export interface UserContext {
  id?: string;
  email?: string;
  roles?: string[];
  /** The user's own token (token-forwarding mode). */
  token?: string;
}

export type MimirRequestInit = RequestInit & { user?: UserContext };

export interface MimirClient {
  readonly mode: AuthMode;
  readonly url: string;
  /** `fetch` with credentials added; relative URLs are resolved against the Mimir URL. */
  fetch(input: string | URL, init?: MimirRequestInit): Promise<Response>;
  /** The authentication (and user-context) headers for one request. */
  headers(user?: UserContext): Promise<Record<string, string>>;
  /** Service-account mode: a valid access token, renewed when needed. */
  accessToken(): Promise<string>;
}

/** A failure talking to the hub's token endpoint; never carries a secret. */
export class MimirClientError extends Error {
  readonly status: number | undefined;
  /** The hub's OAuth error code, or `unreachable` when no answer came. */
  readonly error: string | undefined;
  constructor(message: string, status?: number, error?: string) {
    super(message);
    this.name = 'MimirClientError';
    this.status = status;
    this.error = error;
  }
}

interface CachedToken { value: string; expiresAt: number; renewAt: number }

export function createMimirClient(options: ClientOptions = {}): MimirClient {
  const o: ClientOptions = { ...(options.fromEnv === false ? {} : clientOptionsFromEnv()), ...options };
  const url = (o.url ?? 'http://localhost:9042').replace(/\/+$/, '');
  const mode: AuthMode = o.mode ?? (o.serviceAccountId ? 'service-account' : o.apiKey ? 'api-key' : 'token-forwarding');
  const doFetch = o.fetch ?? globalThis.fetch;
  const now = o.now ?? Date.now;
  const renewBefore = (o.renewBeforeSeconds ?? 60) * 1000;
  // fetch refuses a URL with credentials, and its error repeats the password: refused here, read as
  // fetch reads it (WHATWG URL), without repeating it; nothing below then prints a password.
  if (carriesCredentials(url)) throw new MimirClientError('The hub URL (the url option or MIMIR_URL) must not carry a user name or password; the hub takes credentials in headers.');
  if (mode === 'api-key' && !o.apiKey) throw new MimirClientError('api-key mode needs MIMIR_API_KEY (or the apiKey option).');
  // A key or a service account's secret never crosses a network in the clear: https, or a loopback host.
  if (mode !== 'token-forwarding' && !o.allowInsecureHttp && !secureOrLoopback(url)) {
    throw new MimirClientError(`${url} is plain http to a host that is not loopback: the ${mode === 'api-key' ? 'API key' : 'service account secret'} would cross the network in the clear. Use https, or set MIMIR_ALLOW_INSECURE_HTTP=true on a private network you trust.`);
  }
  if (mode === 'service-account' && (!o.serviceAccountId || !o.serviceAccountSecret)) {
    throw new MimirClientError('service-account mode needs MIMIR_SERVICE_ACCOUNT_ID and MIMIR_SERVICE_ACCOUNT_SECRET.');
  }

  let cached: CachedToken | undefined;
  let pending: Promise<CachedToken> | undefined;

  const requestToken = async (): Promise<CachedToken> => {
    const basic = Buffer.from(`${encodeURIComponent(o.serviceAccountId!)}:${encodeURIComponent(o.serviceAccountSecret!)}`).toString('base64');
    const started = now();
    const res = await doFetch(`${url}/auth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'grant_type=client_credentials',
    }).catch((e: unknown) => {
      // fetch's own "fetch failed" names neither the hub nor the reason (that is in its cause).
      const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
      const why = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (e as Error).message;
      throw new MimirClientError(`The hub at ${url} cannot be reached (${why}); check that it runs there, or point the client at it (the url option or MIMIR_URL).`, undefined, 'unreachable');
    });
    const body = await res.json().catch(() => ({})) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    if (!res.ok || typeof body.access_token !== 'string') {
      throw new MimirClientError(`The hub refused the service account token request: ${body.error ?? res.status}${body.error_description ? ` (${body.error_description})` : ''}`, res.status, body.error);
    }
    const lifetime = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300) * 1000;
    return { value: body.access_token, expiresAt: started + lifetime, renewAt: started + lifetime - Math.min(renewBefore, lifetime / 5) };
  };

  /** Single flight: however many callers need a token at once, one request is made. */
  const token = (force = false, stale?: string): Promise<CachedToken> => {
    if (cached && !force && now() < cached.renewAt) return Promise.resolve(cached);
    // Someone already replaced the token that was found expired: use theirs.
    if (force && cached && stale !== undefined && cached.value !== stale && now() < cached.renewAt) return Promise.resolve(cached);
    pending ??= requestToken().then((t) => { cached = t; return t; }).finally(() => { pending = undefined; });
    return pending;
  };

  const headersFor = async (user: UserContext | undefined, tokenValue?: string): Promise<Record<string, string>> => {
    const h: Record<string, string> = {};
    if (mode === 'api-key') h['x-api-key'] = o.apiKey!;
    else if (mode === 'service-account') h.authorization = `Bearer ${tokenValue ?? (await token()).value}`;
    else {
      if (!user?.token) throw new MimirClientError('token-forwarding mode needs the user\'s token (user.token).');
      const name = (o.tokenHeader ?? 'authorization').toLowerCase();
      h[name] = name === 'authorization' ? `Bearer ${user.token}` : user.token;
    }
    if (o.forwardUserContext && user?.id) {
      h[(o.userContextHeader ?? 'X-User-ID').toLowerCase()] = user.id;
      if (user.email) h[(o.userEmailHeader ?? 'X-User-Email').toLowerCase()] = user.email;
      if (user.roles?.length) h[(o.userRolesHeader ?? 'X-User-Roles').toLowerCase()] = user.roles.join(',');
    }
    return h;
  };

  const send = async (target: string, init: MimirRequestInit, tokenValue?: string): Promise<Response> => {
    const { user, ...rest } = init;
    const headers = new Headers(rest.headers);
    for (const [k, v] of Object.entries(await headersFor(user, tokenValue))) headers.set(k, v);
    return doFetch(target, { ...rest, headers });
  };

  return {
    mode,
    url,
    async fetch(input, init = {}) {
      const target = typeof input === 'string' && input.startsWith('/') ? `${url}${input}` : String(input);
      if (mode !== 'service-account') return send(target, init);
      const used = (await token()).value;
      const res = await send(target, init, used);
      if (res.status !== 401 || !replayable(init.body) || !(await isTokenExpired(res))) return res;
      // The hub says the token expired before we thought it would (clock skew, revocation of
      // a key): renew once and retry once.
      await res.body?.cancel().catch(() => undefined);
      const renewed = await token(true, used);
      return send(target, init, renewed.value);
    },
    headers: (user) => headersFor(user),
    async accessToken() {
      if (mode !== 'service-account') throw new MimirClientError('accessToken() is for service-account mode.');
      return (await token()).value;
    },
  };
}

/** Bodies that can be sent twice (a stream cannot). */
function replayable(body: RequestInit['body']): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof URLSearchParams
    || body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof Blob || body instanceof FormData;
}

/** The seed's contract: an expired token is 401 with `"error": "token_expired"`. */
async function isTokenExpired(res: Response): Promise<boolean> {
  try {
    const body = await res.clone().json() as { error?: unknown };
    return body.error === 'token_expired';
  } catch {
    return false;
  }
}

/** https, or http to a loopback host (localhost, 127.0.0.0/8, ::1). */
function carriesCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

function secureOrLoopback(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || (u.protocol === 'http:' && /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/.test(u.hostname));
  } catch {
    return false;
  }
}
