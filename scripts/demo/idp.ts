/**
 * The demo's identity provider: a real OpenID provider (the npm package `oidc-provider`, a
 * development dependency) on loopback, with a fixed list of users and their passwords, for
 * trying the hub without bringing an IdP. A local provider for development only: users live in
 * memory, its signing key is made at start, and it listens on 127.0.0.1 alone.
 *
 * It behaves as a conformant OpenID provider does (OIDC Core §5.4): the ID token of the code
 * flow carries `sub` only, and the profile (`name`, `email`, and the `roles` claim the hub's
 * generic kind reads, under a `roles` scope) comes from the userinfo endpoint.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
// @ts-expect-error -- oidc-provider ships no type declarations
import Provider from 'oidc-provider';

export interface DemoUser {
  /** The login name, also the `sub`. */
  login: string;
  password: string;
  name: string;
  email: string;
  roles: string[];
}

export interface DemoIdpOptions {
  users: readonly DemoUser[];
  /** The hub's callback (the redirect URI registered for its client). */
  redirectUri: string;
  /** Where the IdP may send the browser after signing out (the hub's login page). */
  postLogoutRedirectUri: string;
  port?: number;
}

export interface DemoIdp {
  issuer: string;
  port: number;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

const CLIENT_ID = 'mimir-auth-hub-demo';

/**
 * oidc-provider's storage for this one process: a Map with expiry (the package's own
 * development adapter works the same way, and says so on every start).
 */
function memoryAdapter() {
  const store = new Map<string, { payload: Record<string, unknown>; expiresAt: number | undefined }>();
  const live = (key: string) => {
    const hit = store.get(key);
    if (hit && hit.expiresAt !== undefined && hit.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return hit?.payload;
  };
  return class MemoryAdapter {
    readonly name: string;
    constructor(name: string) { this.name = name; }
    #key(id: string) { return `${this.name}:${id}`; }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      store.set(this.#key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
      if (typeof payload.uid === 'string') store.set(`${this.name}:uid:${payload.uid}`, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    }
    async find(id: string) { return live(this.#key(id)); }
    async findByUid(uid: string) { return live(`${this.name}:uid:${uid}`); }
    async findByUserCode() { return undefined; }
    async consume(id: string) {
      const hit = live(this.#key(id));
      if (hit) hit.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) { store.delete(this.#key(id)); }
    async revokeByGrantId(grantId: string) {
      for (const [key, { payload }] of store) if (payload.grantId === grantId) store.delete(key);
    }
  };
}

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>
body{font:16px/1.5 system-ui,sans-serif;background:#eef0f3;margin:0;color:#1d2330}
main{max-width:24rem;margin:10vh auto;background:#fff;border-radius:10px;padding:2rem;box-shadow:0 2px 12px #0002}
h1{font-size:1.3rem;margin:0 0 .3rem}.note{color:#5b6474;font-size:.9rem}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button{margin-top:1.2rem;width:100%;padding:.6rem;font:inherit;background:#1d2330;color:#fff;border:0;border-radius:6px;cursor:pointer}
.error{color:#b71c1c}
</style></head><body><main>${body}</main></body></html>`;
}

function loginForm(action: string, error?: string, login = ''): string {
  return page('Sign in · demo identity provider', `<h1>Demo identity provider</h1>
<p class="note">A local OpenID provider for development only (scripts/demo/idp.ts).</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="${esc(action)}">
<label for="login">User name</label><input id="login" name="login" autocomplete="username" required value="${esc(login)}" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function samePassword(expected: string, given: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY' });
  res.end(html);
}

/** Starts the demo IdP on 127.0.0.1 (a free port unless `port` is given). */
export async function startDemoIdp(options: DemoIdpOptions): Promise<DemoIdp> {
  const users = new Map(options.users.map((u) => [u.login, u]));
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    clients: [{
      client_id: CLIENT_ID, client_secret: clientSecret,
      redirect_uris: [options.redirectUri], post_logout_redirect_uris: [options.postLogoutRedirectUri],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    findAccount: async (_ctx: unknown, id: string) => {
      const user = users.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        claims: async () => ({ sub: id, name: user.name, preferred_username: user.login, email: user.email, email_verified: true, roles: user.roles }),
      };
    },
    // OIDC Core §5.4 scopes, and `roles` for the claim the hub's generic kind maps to RBAC roles.
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'], roles: ['roles'] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'roles'],
    pkce: { required: () => true },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // A first-party provider: the hub is trusted, so consent is implied and only the login form shows.
    loadExistingGrant: async (ctx: any) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile email roles offline_access');
      await grant.save();
      return grant;
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: any, form: string) => {
          ctx.body = page('Sign out · demo identity provider', `<h1>Sign out of the demo identity provider too?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in here</button>`);
        },
        postLogoutSuccessSource: async (ctx: any) => { ctx.body = page('Signed out', '<h1>Signed out</h1>'); },
      },
    },
    renderError: async (ctx: any, out: Record<string, unknown>) => {
      ctx.type = 'html';
      ctx.body = page('Error · demo identity provider', `<h1>${esc(out.error)}</h1><p>${esc(out.error_description)}</p>`);
    },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 3600, IdToken: 3600, RefreshToken: 86400, AuthorizationCode: 60 },
  });

  const callback = provider.callback();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!path.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    void interaction(req, res, path).catch((e: unknown) => {
      if (!res.headersSent) send(res, 400, page('Error', `<h1>This sign-in cannot go on</h1><p>${esc((e as Error).message)}</p><p>Start it again from the hub.</p>`));
      else res.destroy();
    });
  });

  /** The login step (oidc-provider leaves interactions to the host): check the password, finish the login. */
  async function interaction(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    const action = `/interaction/${details.uid}`;
    if (path !== action) throw new Error('unknown interaction');
    if (req.method === 'GET') return send(res, 200, loginForm(action));
    if (req.method !== 'POST') return send(res, 405, page('Error', '<h1>Method not allowed</h1>'));
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const user = users.get(login);
    if (!user || !samePassword(user.password, form.get('password') ?? '')) {
      return send(res, 401, loginForm(action, 'Wrong user name or password.', login));
    }
    await provider.interactionFinished(req, res, { login: { accountId: user.login } }, { mergeWithLastSubmission: false });
  }

  return {
    issuer, port, clientId: CLIENT_ID, clientSecret,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
