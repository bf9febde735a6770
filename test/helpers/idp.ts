/**
 * A real OpenID provider (the npm package `oidc-provider`) on loopback, shaped like one of the
 * provider kinds the hub knows: issuer path and claim names as in
 * the shared fixtures provider-claims/<kind>.json (outside this repository: the claim shapes were copied here). Sign-in uses oidc-provider's
 * devInteractions login form (any login, any password; the login names the account), which a
 * test drives by HTTP (`loginByHttp`) or in Chromium. A second client (`otherClient`) is
 * registered beside the hub's, as another application of the same IdP. The google kind also
 * serves Google's tokeninfo endpoint (`/tokeninfo`, published as `tokeninfo_endpoint` in its
 * discovery document), answering from oidc-provider's own stored access tokens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
// @ts-expect-error -- oidc-provider ships no type declarations
import Provider from 'oidc-provider';
import { freePort } from './hub.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

export type IdpKind = 'okta' | 'auth0' | 'azure' | 'google' | 'keycloak' | 'cognito' | 'generic';

export interface StartIdpOptions {
  kind: IdpKind;
  /** The hub's callback(s). */
  redirectUris: string[];
  postLogoutRedirectUris?: string[];
  clientId?: string;
  clientSecret?: string;
  /** Extra claims per login name, merged over the kind's default claims. */
  users?: Record<string, Record<string, unknown>>;
  /** Resource server (audience) for JWT access tokens (client_credentials with `resource`). */
  audience?: string;
  tenantId?: string;
  realm?: string;
  /** Listen on this port (restart tests); default a free one. */
  port?: number;
  /**
   * Azure multi-tenant shape: `${origin}/organizations/v2.0/.well-known/openid-configuration`
   * publishes the issuer as `${origin}/{tenantid}/v2.0`, as Microsoft's does; tokens carry the
   * tenant's own issuer (`issuer`).
   */
  multiTenant?: boolean;
  /**
   * As a conformant OpenID provider (oidc-provider's default, OIDC Core §5.4): the ID token of the
   * code flow carries no profile claims (name, email, the kind's role claims); userinfo has them.
   * Default false: every claim is in the ID token too.
   */
  conformIdTokenClaims?: boolean;
  /** Serve the userinfo endpoint (and publish it in discovery). Default true. */
  userinfo?: boolean;
}

export interface TestIdp {
  kind: IdpKind;
  issuer: string;
  origin: string;
  port: number;
  clientId: string;
  clientSecret: string;
  /** Another application registered at the same IdP (not the hub). */
  otherClient: { clientId: string; clientSecret: string };
  /** How many times the JWKS endpoint was fetched. */
  jwksRequests: number;
  /** Requests per endpoint path below the issuer (e.g. `/token`, `/token/introspection`, `/me`). */
  requests(path: string): number;
  /** Multi-tenant: where discovery is fetched (`${origin}/organizations/v2.0`) and the published template. */
  commonIssuer: string;
  issuerTemplate: string;
  /**
   * A user's tokens by the authorization code flow (PKCE), as a client of this IdP would hold
   * them: the hub's client, or with `{ client: 'other' }` the other application's.
   */
  userTokens(login?: string, options?: { client?: 'hub' | 'other' }): Promise<{ access_token: string; refresh_token?: string; id_token?: string }>;
  /** RFC 7009 revocation at the IdP (the user's IdP session ends). */
  revoke(token: string, hint?: 'access_token' | 'refresh_token'): Promise<void>;
  /** Current signing key id. */
  kid: string;
  /** Replaces the signing key (the old one leaves the JWKS), as an IdP key rotation does. */
  rotateKeys(): Promise<void>;
  /** Signs a token with the IdP's current key: defaults iss, iat, exp; `header` overrides. */
  sign(claims: JWTPayload, header?: { typ?: string; kid?: string }): Promise<string>;
  /** Rewrites the claims of ID tokens the token endpoint returns, re-signed with the IdP's key. */
  tamperIdToken(fn: ((claims: JWTPayload) => JWTPayload) | undefined): void;
  /** A real access token from the token endpoint (client_credentials). */
  clientCredentialsToken(options?: { resource?: string }): Promise<string>;
  /** Follows an authorization URL through the login form; returns the redirect back to the hub. */
  loginByHttp(authorizationUrl: string, login?: string): Promise<URL>;
  close(): Promise<void>;
}

/** Default claims per kind, from the fixtures (values shortened). */
function kindClaims(kind: IdpKind, login: string, o: { tenantId: string; clientId: string; audience?: string }): Record<string, unknown> {
  const base = { email: `${login}@example.com`, email_verified: true, name: `${login} Doe` };
  switch (kind) {
    case 'okta': return { ...base, preferred_username: `${login}@example.com`, groups: ['Everyone', 'developer'] };
    case 'auth0': return { ...base, nickname: login, 'https://mimir.example.com/roles': ['developer'] };
    // Microsoft never sends email_verified (fixtures/provider-claims/azure.json).
    case 'azure': return { email: base.email, name: base.name, preferred_username: `${login}@example.com`, tid: o.tenantId, oid: `oid-${login}`, roles: ['developer'], groups: ['00000000-0000-0000-0000-0000000000a1'] };
    case 'google': return { ...base, hd: 'example.com' };
    case 'keycloak': return { ...base, preferred_username: login, realm_access: { roles: ['offline_access', 'developer'] }, resource_access: { [o.clientId]: { roles: ['analyst'] } } };
    case 'cognito': return { ...base, 'cognito:username': login, 'cognito:groups': ['developer'] };
    case 'generic': return { ...base, roles: ['developer'] };
  }
}

const KIND_CLAIM_NAMES = ['groups', 'roles', 'tid', 'oid', 'hd', 'realm_access', 'resource_access', 'cognito:groups', 'cognito:username',
  'preferred_username', 'nickname', 'https://mimir.example.com/roles', '_claim_names', '_claim_sources', 'hasgroups', 'token_use'];

function issuerFor(kind: IdpKind, origin: string, o: { tenantId: string; realm: string }): string {
  switch (kind) {
    case 'okta': return `${origin}/oauth2/default`;
    case 'auth0': return `${origin}/`; // Auth0's issuer ends with a slash
    case 'azure': return `${origin}/${o.tenantId}/v2.0`;
    case 'keycloak': return `${origin}/realms/${o.realm}`;
    case 'cognito': return `${origin}/us-east-1_TESTPOOL`;
    case 'google':
    case 'generic': return origin;
  }
}

async function newKey(): Promise<{ jwk: JWK; kid: string; privateKey: PrivateKey }> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(8).toString('hex');
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  return { jwk, kid, privateKey: privateKey };
}

export async function startIdp(options: StartIdpOptions): Promise<TestIdp> {
  const port = options.port ?? await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const tenantId = options.tenantId ?? '00000000-0000-0000-0000-000000000001';
  const realm = options.realm ?? 'mimir';
  const issuer = issuerFor(options.kind, origin, { tenantId, realm });
  const prefix = new URL(issuer).pathname.replace(/\/$/, '');
  const clientId = options.clientId ?? `${options.kind}-client-${randomBytes(3).toString('hex')}`;
  const clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url');
  const otherClient = { clientId: `${clientId}-other`, clientSecret: randomBytes(24).toString('base64url') };
  const users = options.users ?? {};
  let key = await newKey();
  let tamper: ((claims: JWTPayload) => JWTPayload) | undefined;

  const claimsOfLogin = (login: string): Record<string, unknown> => ({
    ...kindClaims(options.kind, login, { tenantId, clientId, ...(options.audience ? { audience: options.audience } : {}) }),
    ...(options.kind === 'cognito' ? { token_use: 'id' } : {}),
    ...users[login],
  });

  const build = (): any => {
    const claimsOf = claimsOfLogin;
    const registration = (id: string, secret: string) => ({
      client_id: id, client_secret: secret,
      redirect_uris: options.redirectUris,
      post_logout_redirect_uris: options.postLogoutRedirectUris ?? [],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    const p = new Provider(issuer, {
      clients: [registration(clientId, clientSecret), registration(otherClient.clientId, otherClient.clientSecret)],
      ...(options.kind === 'google' ? { discovery: { tokeninfo_endpoint: `${issuer.replace(/\/$/, '')}${TOKENINFO}` } } : {}),
      jwks: { keys: [key.jwk] },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      findAccount: async (_ctx: unknown, id: string) => ({
        accountId: id,
        claims: async () => ({ sub: id, ...claimsOf(id) }),
      }),
      claims: {
        openid: ['sub', ...KIND_CLAIM_NAMES],
        email: ['email', 'email_verified'],
        profile: ['name'],
      },
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'roles', 'api'],
      conformIdTokenClaims: options.conformIdTokenClaims ?? false,
      ttl: { Interaction: 600, Grant: 3600, Session: 3600, AccessToken: 3600, RefreshToken: 86400, IdToken: 3600, ClientCredentials: 600, AuthorizationCode: 60 },
      pkce: { required: () => true },
      issueRefreshToken: async () => true,
      // Consent is implied (a first-party test IdP): only the login form is shown.
      loadExistingGrant: async (ctx: any) => {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid email profile groups roles offline_access');
        await grant.save();
        return grant;
      },
      features: {
        devInteractions: { enabled: true },
        userinfo: { enabled: options.userinfo ?? true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        clientCredentials: { enabled: true },
        rpInitiatedLogout: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => undefined,
          useGrantedResource: () => false,
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            if (!options.audience || resource !== options.audience) throw new Error('unknown resource');
            return { scope: 'api', audience: options.audience, accessTokenFormat: 'jwt', accessTokenTTL: 3600 };
          },
        },
      },
      extraTokenClaims: async (_ctx: unknown, token: any) => {
        if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return undefined;
        const subject = token.accountId as string | undefined;
        const shaped = subject ? claimsOf(subject) : {};
        switch (options.kind) {
          case 'cognito': return { token_use: 'access', 'cognito:groups': shaped['cognito:groups'] ?? [] };
          case 'keycloak': return { typ: 'Bearer', realm_access: shaped.realm_access ?? { roles: [] } };
          case 'azure': return { tid: tenantId, roles: shaped.roles ?? [] };
          case 'okta': return { cid: clientId, groups: shaped.groups ?? [] };
          default: return { roles: shaped.roles ?? [] };
        }
      },
      renderError: async (ctx: any, out: Record<string, unknown>) => {
        ctx.type = 'json';
        ctx.body = out;
      },
    } as any);
    return p;
  };

  let provider = build();
  const state = { jwksRequests: 0 };
  const counts = new Map<string, number>();
  const commonIssuer = `${origin}/organizations/v2.0`;
  const issuerTemplate = `${origin}/{tenantid}/v2.0`;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    if (options.multiTenant && url === `${new URL(commonIssuer).pathname}/.well-known/openid-configuration`) {
      void fetch(`${issuer}/.well-known/openid-configuration`).then(async (r) => {
        const doc = { ...await r.json() as Record<string, unknown>, issuer: issuerTemplate };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(doc));
      });
      return;
    }
    if (prefix && !url.startsWith(prefix)) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    const inner = prefix ? url.slice(prefix.length) || '/' : url;
    const path = inner.split('?')[0]!;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (req.method === 'GET' && path === '/jwks') state.jwksRequests += 1;
    if (options.kind === 'google' && path === TOKENINFO) {
      void tokeninfo(req, inner, provider, claimsOfLogin).then(({ status, body }) => {
        res.statusCode = status;
        res.setHeader('content-type', 'application/json; charset=UTF-8');
        res.setHeader('cache-control', 'no-cache, no-store, max-age=0, must-revalidate');
        res.end(JSON.stringify(body));
      });
      return;
    }
    if (req.method === 'POST' && path === '/token' && tamper) rewriteIdToken(res, tamper, key);
    if (prefix) {
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = url;
      req.url = inner;
    }
    void provider.callback()(req, res);
  };

  const server: Server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  const idp: TestIdp = {
    kind: options.kind, issuer, origin, port, clientId, clientSecret, otherClient,
    get jwksRequests() { return state.jwksRequests; },
    set jwksRequests(n: number) { state.jwksRequests = n; },
    requests: (path) => counts.get(path) ?? 0,
    commonIssuer, issuerTemplate,
    get kid() { return key.kid; },
    async rotateKeys() {
      key = await newKey();
      provider = build();
    },
    async sign(claims, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iat: now, exp: now + 600, iss: issuer, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: header.kid ?? key.kid, ...(header.typ ? { typ: header.typ } : {}) })
        .sign(key.privateKey);
    },
    tamperIdToken(fn) { tamper = fn; },
    async clientCredentialsToken({ resource } = {}) {
      const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret });
      if (resource ?? options.audience) body.set('resource', (resource ?? options.audience)!);
      const res = await fetch(`${issuer.replace(/\/$/, '')}/token`, { method: 'POST', body });
      const json = await res.json() as { access_token?: string };
      if (!json.access_token) throw new Error(`client_credentials failed: ${res.status} ${JSON.stringify(json)}`);
      return json.access_token;
    },
    async userTokens(login = 'jane', { client = 'hub' } = {}) {
      const { clientId: id, clientSecret: secret } = client === 'other' ? otherClient : { clientId, clientSecret };
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const redirectUri = options.redirectUris[0]!;
      const auth = new URL(`${issuer.replace(/\/$/, '')}/auth`);
      for (const [k, v] of Object.entries({ client_id: id, redirect_uri: redirectUri, response_type: 'code', scope: 'openid email profile', code_challenge: challenge, code_challenge_method: 'S256', nonce: randomBytes(8).toString('hex') })) auth.searchParams.set(k, v);
      const back = await driveLogin(auth.href, login, options.redirectUris);
      const body = new URLSearchParams({ grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier, client_id: id, client_secret: secret });
      const res = await fetch(`${issuer.replace(/\/$/, '')}/token`, { method: 'POST', body });
      const json = await res.json() as { access_token?: string; refresh_token?: string; id_token?: string };
      if (!json.access_token) throw new Error(`code exchange failed: ${res.status} ${JSON.stringify(json)}`);
      return json as { access_token: string; refresh_token?: string; id_token?: string };
    },
    async revoke(token, hint) {
      const body = new URLSearchParams({ token, client_id: clientId, client_secret: clientSecret, ...(hint ? { token_type_hint: hint } : {}) });
      const res = await fetch(`${issuer.replace(/\/$/, '')}/token/revocation`, { method: 'POST', body });
      if (res.status !== 200) throw new Error(`revocation failed: ${res.status} ${await res.text()}`);
    },
    async loginByHttp(authorizationUrl, login = 'jane') {
      return driveLogin(authorizationUrl, login, options.redirectUris);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return idp;
}

const TOKENINFO = '/tokeninfo';

/**
 * Google's tokeninfo for access tokens (GET or POST, `access_token` in the query or a form
 * body), answered as Google does: `aud` and `azp` the client the token was issued to, `exp` and
 * `expires_in` as strings, `email`/`email_verified` (a string) only with the email scope;
 * 400 `invalid_token` for a token unknown, revoked or expired. Built on oidc-provider's own
 * store (`AccessToken.find` checks expiry), so it knows exactly the tokens the IdP issued.
 */
async function tokeninfo(req: IncomingMessage, inner: string, provider: any, claimsOf: (login: string) => Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const invalid = { status: 400, body: { error: 'invalid_token', error_description: 'Invalid Value' } };
  let value = new URL(inner, 'http://idp.invalid').searchParams.get('access_token');
  if (req.method === 'POST') {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    value = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('access_token') ?? value;
  } else if (req.method !== 'GET') {
    return { status: 405, body: { error: 'invalid_request' } };
  }
  if (!value) return { status: 400, body: { error: 'invalid_request', error_description: 'either access_token, id_token, or token_handle required' } };
  const token = await provider.AccessToken.find(value).catch(() => undefined);
  if (!token || token.isExpired || !token.accountId) return invalid;
  const now = Math.floor(Date.now() / 1000);
  const scopes = String(token.scope ?? '').split(' ').filter(Boolean);
  const claims = claimsOf(token.accountId as string);
  return {
    status: 200,
    body: {
      azp: token.clientId, aud: token.clientId, sub: token.accountId, scope: scopes.join(' '),
      exp: String(token.exp), expires_in: String(Math.max(0, token.exp - now)),
      ...(scopes.includes('email') && typeof claims.email === 'string' ? { email: claims.email, email_verified: String(claims.email_verified === true) } : {}),
      access_type: scopes.includes('offline_access') ? 'offline' : 'online',
    },
  };
}

/** Buffers the token endpoint's JSON and replaces its id_token with a re-signed, rewritten one. */
function rewriteIdToken(res: ServerResponse, fn: (claims: JWTPayload) => JWTPayload, key: { kid: string; privateKey: PrivateKey }): void {
  const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
  const chunks: Buffer[] = [];
  const write = res.write.bind(res);
  res.write = ((chunk: unknown) => { chunks.push(Buffer.from(chunk as Buffer)); return true; }) as typeof res.write;
  res.end = ((chunk?: unknown) => {
    if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk as Buffer));
    const text = Buffer.concat(chunks).toString('utf8');
    void (async () => {
      let out = text;
      try {
        const json = JSON.parse(text) as { id_token?: string };
        if (json.id_token) {
          const header = decodeProtectedHeader(json.id_token);
          json.id_token = await new SignJWT(fn(decodeJwt(json.id_token)))
            .setProtectedHeader({ alg: 'RS256', kid: header.kid ?? key.kid })
            .sign(key.privateKey);
          out = JSON.stringify(json);
        }
      } catch { /* not JSON: pass through */ }
      if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(out));
      res.write = write;
      end(out);
    })();
    return res;
  }) as typeof res.end;
}

/** A minimal cookie jar + redirect follower that submits devInteractions' login form. */
async function driveLogin(start: string, login: string, redirectUris: string[]): Promise<URL> {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res: Response) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  };
  let url = start;
  let method = 'GET';
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, {
      method, redirect: 'manual',
      headers: { cookie: cookieHeader(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(body ? { body } : {}),
    });
    remember(res);
    const location = res.headers.get('location');
    if (location) {
      const next = new URL(location, url);
      if (redirectUris.some((r) => next.href.startsWith(r))) return next;
      url = next.href;
      method = 'GET';
      body = undefined;
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(html)?.[1];
    if (res.status === 200 && action && html.includes('name="login"')) {
      url = new URL(action.replace(/&amp;/g, '&'), url).href;
      method = 'POST';
      body = new URLSearchParams({ prompt: 'login', login, password: 'test-password' });
      continue;
    }
    throw new Error(`login flow stopped at ${url}: ${res.status} ${html.slice(0, 300)}`);
  }
  throw new Error('login flow: too many redirects');
}
