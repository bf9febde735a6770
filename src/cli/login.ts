/**
 * `mimir-auth login | whoami | token | logout` for people: the authorization code flow with PKCE
 * through a loopback redirect (RFC 8252 §7.3), as the built-in public client `mimir-cli`, using
 * openid-client against the hub's RFC 8414 metadata.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import { CLI_CLIENT } from '../oauth/clients/registry.ts';
import { pageHeaders } from '../pages/respond.ts';
import { deleteCredentials, loadCredentials, saveCredentials, type StoredCredentials } from './credentials.ts';

const isLoopback = (u: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);

export class LoginError extends Error {}

async function discover(url: string): Promise<oidc.Configuration> {
  let server: URL;
  try {
    server = new URL(url);
  } catch {
    throw new LoginError(`--url: "${url}" is not a URL (e.g. https://mimir.example.com)`);
  }
  if (server.protocol !== 'https:' && !(server.protocol === 'http:' && isLoopback(server))) {
    throw new LoginError(`--url: ${server.origin} must use https (http only on a loopback host)`);
  }
  try {
    return await oidc.discovery(server, CLI_CLIENT.client_id, undefined, oidc.None(), {
      algorithm: 'oauth2',
      ...(server.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
      timeout: 10,
    });
  } catch (e) {
    throw new LoginError(`cannot read the hub's metadata at ${server.origin}/.well-known/oauth-authorization-server: ${(e as Error).message}`);
  }
}

function openBrowser(url: string): boolean {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}

export interface LoginOptions {
  url: string;
  openBrowser: boolean;
  timeoutSeconds: number;
  scope?: string;
  /** Where progress goes (stderr), so stdout stays clean. */
  out: NodeJS.WritableStream;
}

export async function login(o: LoginOptions): Promise<StoredCredentials> {
  const config = await discover(o.url);
  const verifier = oidc.randomPKCECodeVerifier();
  const challenge = await oidc.calculatePKCECodeChallenge(verifier);
  const state = oidc.randomState();

  // RFC 8252 §7.3: a loopback redirect on a port of our choosing, bound to 127.0.0.1 only.
  let redirectUri = '';
  let resolveCallback!: (u: URL) => void;
  const callback = new Promise<URL>((resolve) => { resolveCallback = resolve; });
  const server: Server = createServer((req, res) => {
    // The full redirect URI (with our port): openid-client sends it back as redirect_uri.
    const u = new URL(req.url ?? '/', redirectUri);
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const ok = !u.searchParams.get('error');
    res.writeHead(ok ? 200 : 400, pageHeaders());
    res.end(`<!doctype html><meta charset="utf-8"><title>mimir-auth</title><p>${ok ? 'Signed in. You can close this window and return to the terminal.' : 'Sign-in failed; see the terminal.'}</p>`);
    resolveCallback(u);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  redirectUri = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/callback`;
  // RFC 8707: the hub's origin root, so the token is good for every path (the API, /auth/me, /mcp).
  const resource = config.serverMetadata().issuer.replace(/\/$/, '');
  const authUrl = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state,
    ...(o.scope ? { scope: o.scope } : {}),
    resource,
  });

  o.out.write(`Sign in to ${o.url} in your browser:\n\n  ${authUrl.href}\n\n`);
  if (o.openBrowser && !openBrowser(authUrl.href)) o.out.write('(Could not open a browser; open the URL above yourself.)\n');

  const started = Date.now();
  const tty = Boolean((o.out as NodeJS.WriteStream).isTTY);
  const tick = setInterval(() => {
    const left = Math.max(0, o.timeoutSeconds - Math.floor((Date.now() - started) / 1000));
    const line = `Waiting for the browser… ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left`;
    if (tty) o.out.write(`\r${line}`);
    else if (left % 30 === 0) o.out.write(`${line}\n`);
  }, 1000);
  let timer: NodeJS.Timeout | undefined;
  try {
    const back = await Promise.race([
      callback,
      new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new LoginError(`no sign-in within ${o.timeoutSeconds} s; run mimir-auth login again`)), o.timeoutSeconds * 1000); }),
    ]);
    if (tty) o.out.write('\n');
    const error = back.searchParams.get('error');
    if (error) throw new LoginError(`the hub refused the sign-in: ${error}${back.searchParams.get('error_description') ? ` (${back.searchParams.get('error_description')})` : ''}`);
    const tokens = await oidc.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state }, { resource })
      .catch((e: unknown) => { throw new LoginError(`the hub refused the code exchange: ${describe(e)}`); });
    const creds: StoredCredentials = {
      url: o.url.replace(/\/$/, ''),
      issuer: config.serverMetadata().issuer,
      clientId: CLI_CLIENT.client_id,
      accessToken: tokens.access_token,
      expiresAt: Math.floor(Date.now() / 1000) + (tokens.expires_in ?? 3600),
      savedAt: Math.floor(Date.now() / 1000),
      ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
      ...(tokens.scope ? { scope: tokens.scope } : {}),
    };
    const file = saveCredentials(creds);
    o.out.write(`Signed in. Credentials saved (encrypted) to ${file}\n`);
    return creds;
  } finally {
    clearInterval(tick);
    if (timer) clearTimeout(timer);
    server.close();
    server.closeAllConnections();
  }
}

/** The stored credentials with an access token valid for at least a minute more, refreshed if needed. */
export async function freshCredentials(): Promise<StoredCredentials> {
  const creds = loadCredentials();
  if (!creds) throw new LoginError('not signed in; run `mimir-auth login --url <hub URL>`');
  if (creds.expiresAt - 60 > Math.floor(Date.now() / 1000)) return creds;
  if (!creds.refreshToken) throw new LoginError('the access token expired and there is no refresh token; run `mimir-auth login` again');
  const config = await discover(creds.url);
  let tokens: Awaited<ReturnType<typeof oidc.refreshTokenGrant>>;
  try {
    tokens = await oidc.refreshTokenGrant(config, creds.refreshToken);
  } catch (e) {
    throw new LoginError(`the session could not be renewed (${describe(e)}); run \`mimir-auth login\` again`);
  }
  const next: StoredCredentials = {
    ...creds,
    accessToken: tokens.access_token,
    expiresAt: Math.floor(Date.now() / 1000) + (tokens.expires_in ?? 3600),
    savedAt: Math.floor(Date.now() / 1000),
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
  };
  saveCredentials(next);
  return next;
}

/** openid-client errors carry the OAuth error code and description. */
function describe(e: unknown): string {
  const err = e as { error?: string; error_description?: string; message?: string };
  return err.error ? `${err.error}${err.error_description ? ` (${err.error_description})` : ''}` : err.message ?? String(e);
}

export async function whoami(out: NodeJS.WritableStream): Promise<number> {
  const creds = await freshCredentials();
  const res = await fetch(`${creds.url}/auth/me`, { headers: { authorization: `Bearer ${creds.accessToken}` }, signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new LoginError(`the hub refused the stored token (${res.status}); run \`mimir-auth login\` again`);
  const me = await res.json() as Record<string, unknown>;
  const lines = [
    ['user', me.sub], ['email', me.email], ['name', me.name], ['provider', me.provider],
    ['roles', Array.isArray(me.roles) ? me.roles.join(', ') : ''], ['hub', creds.url],
    ['token expires', new Date(creds.expiresAt * 1000).toISOString()],
  ].filter(([, v]) => v !== undefined && v !== '');
  for (const [k, v] of lines) out.write(`${String(k).padEnd(14)} ${String(v)}\n`);
  return 0;
}

export async function logout(out: NodeJS.WritableStream): Promise<number> {
  const creds = loadCredentials();
  if (!creds) {
    out.write('Not signed in.\n');
    return 0;
  }
  try {
    const config = await discover(creds.url);
    // RFC 7009: revoking the refresh token ends the whole login at the hub.
    if (creds.refreshToken) await oidc.tokenRevocation(config, creds.refreshToken, { token_type_hint: 'refresh_token' });
    await oidc.tokenRevocation(config, creds.accessToken, { token_type_hint: 'access_token' });
  } catch (e) {
    out.write(`warning: could not revoke at ${creds.url} (${(e as Error).message}); deleting local credentials anyway\n`);
  }
  deleteCredentials();
  out.write('Signed out; local credentials deleted.\n');
  return 0;
}
