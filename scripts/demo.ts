/**
 * `npm run demo`: the hub working end to end on one machine, with nothing to bring. Starts on
 * 127.0.0.1, in this order:
 *   1. a local OpenID provider with two users, an admin and a developer (scripts/demo/idp.ts:
 *      oidc-provider, for development only);
 *   2. a small Mimir-shaped upstream with MCP tools (scripts/demo/upstream.ts);
 *   3. the hub, on its embedded default store (SQLite) in a new temporary directory, signing in
 *      through (1) and fronting (2);
 * then prints the URL to open, the users and their passwords, the command that creates an API key
 * and the calls that use it, and runs until Ctrl-C (SIGINT) or SIGTERM stops all three.
 *
 * Options:
 *   --port N          the hub's port (default 9042, or a free one when 9042 is taken)
 *   --data-dir DIR    keep the hub's data in DIR (default: a temporary directory, deleted at exit)
 * MIMIR_BRAND_NAME, MIMIR_BRAND_LOGO_URL, MIMIR_BRAND_ACCENT and MIMIR_LOG_LEVEL are taken from the
 * environment, to try the pages' branding; nothing else is: the demo configures its own hub.
 *
 * package.json runs it as `exec node scripts/demo.ts`: with no shell between npm and the demo,
 * Ctrl-C reaches the demo, which stops everything and exits 0, and npm with it. (A shell in
 * between dies of the SIGINT at once, and npm then reports the demo as killed.)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../src/config/index.ts';
import { openHub, type Hub } from '../src/hub.ts';
import { buildServer } from '../src/http/server.ts';
import { createLogger } from '../src/logger.ts';
import { startDemoIdp, type DemoIdp, type DemoUser } from './demo/idp.ts';
import { startDemoUpstream, type DemoUpstream } from './demo/upstream.ts';

const HOST = '127.0.0.1';
const PREFERRED_PORT = 9042;
const PASSED_THROUGH = ['MIMIR_BRAND_NAME', 'MIMIR_BRAND_LOGO_URL', 'MIMIR_BRAND_ACCENT', 'MIMIR_LOG_LEVEL'];

const out = (text: string) => process.stdout.write(text);

/** `port` if nothing listens on it, else a free port. */
function pickPort(port: number): Promise<number> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => {
      const any = createServer();
      any.listen(0, HOST, () => {
        const free = (any.address() as { port: number }).port;
        any.close(() => done(free));
      });
    });
    probe.listen(port, HOST, () => probe.close(() => done(port)));
  });
}

async function step<T>(what: string, run: () => Promise<T>, shown: (value: T) => string): Promise<T> {
  out(`  starting ${what}… `);
  try {
    const value = await run();
    out(`ok  ${shown(value)}\n`);
    return value;
  } catch (e) {
    out('failed\n');
    throw e;
  }
}

function users(): DemoUser[] {
  const password = () => randomBytes(9).toString('base64url');
  return [
    { login: 'developer', password: password(), name: 'Dana Developer', email: 'developer@example.com', roles: ['developer'] },
    { login: 'admin', password: password(), name: 'Alex Admin', email: 'admin@example.com', roles: ['admin'] },
  ];
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { port: { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    out('usage: npm run demo [-- --port N] [-- --data-dir DIR]\n');
    return 0;
  }
  const requested = values.port === undefined ? undefined : Number(values.port);
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1 || requested > 65535)) {
    console.error('demo: --port must be a whole number from 1 to 65535');
    return 64;
  }
  const keepData = values['data-dir'] !== undefined;
  const dataDir = keepData ? resolve(values['data-dir']!) : mkdtempSync(join(tmpdir(), 'mimir-auth-demo-'));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  let idp: DemoIdp | undefined;
  let upstream: DemoUpstream | undefined;
  let hub: Hub | undefined;
  let app: FastifyInstance | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    // The hub first (it finishes its requests), then what it talks to.
    await app?.close().catch(() => undefined);
    await hub?.close().catch(() => undefined);
    await upstream?.close().catch(() => undefined);
    await idp?.close().catch(() => undefined);
    if (!keepData) rmSync(dataDir, { recursive: true, force: true });
  })());

  out('Mimir Auth Hub demo: an identity provider, a Mimir-shaped upstream and the hub, on this machine only.\n');
  try {
    const port = requested ?? await pickPort(PREFERRED_PORT);
    const hubUrl = `http://${HOST}:${port}`;
    const people = users();
    idp = await step('the identity provider', () => startDemoIdp({
      users: people, redirectUri: `${hubUrl}/auth/callback`, postLogoutRedirectUri: `${hubUrl}/auth/login`,
    }), (i) => `${i.issuer} (a local OpenID provider, for development only)`);
    upstream = await step('the Mimir-shaped upstream', () => startDemoUpstream(), (u) => `${u.url} (MCP tools at /mcp)`);
    const env: Record<string, string> = {};
    for (const name of PASSED_THROUGH) if (process.env[name]) env[name] = process.env[name]!;
    Object.assign(env, {
      MIMIR_AUTH_HOST: HOST, MIMIR_AUTH_PORT: String(port), MIMIR_PUBLIC_URL: hubUrl,
      MIMIR_DATA_DIR: dataDir, MIMIR_TOKEN_STORAGE: 'database',
      MIMIR_AUTH_PROVIDER: 'generic', MIMIR_OAUTH_ISSUER: idp.issuer, MIMIR_OAUTH_CLIENT_ID: idp.clientId, MIMIR_OAUTH_CLIENT_SECRET: idp.clientSecret,
      MIMIR_UPSTREAM_URL: upstream.url,
      // Plain http on loopback: a Secure cookie would not be kept by every browser.
      MIMIR_SESSION_COOKIE_SECURE: 'false',
      // The audit log goes to its file, so this terminal shows what the demo prints.
      MIMIR_AUDIT_LOG_DESTINATION: 'file',
    });
    env.MIMIR_LOG_LEVEL ??= 'warn';
    const started = await step('the hub', async () => {
      const config = loadConfig(env, { dotenv: false });
      hub = await openHub(config, { logger: createLogger(config.logLevel) });
      app = await buildServer(hub);
      await app.listen({ port, host: HOST });
      return config;
    }, (c) => `${c.publicUrl} (data in ${dataDir}${keepData ? '' : ', deleted when the demo stops'})`);

    const width = Math.max(...people.map((p) => p.login.length));
    const keyCommand = `MIMIR_DATA_DIR=${shellQuote(dataDir)} MIMIR_PUBLIC_URL=${started.publicUrl} npx mimir-auth keys create --name demo-key --roles developer`;
    out(`
Open ${started.publicUrl}/auth/account and sign in as:
${people.map((p) => `  ${p.login.padEnd(width)}  password ${p.password}  (${p.name}, role ${p.roles.join(', ')})`).join('\n')}

Create an API key: signed in, on your own page (the key acts as you):
  ${started.publicUrl}/auth/account/api-keys
or, signed in as admin, in the admin console:
  ${started.publicUrl}/auth/admin/
or with the CLI (in another terminal, in this directory):
  ${keyCommand}

Call the Mimir-shaped upstream through the hub with it (KEY=the key it printed):
  curl -H "X-API-Key: $KEY" ${started.publicUrl}/api/nodes/types
  curl -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' ${started.publicUrl}/mcp

Press Ctrl-C to stop.
`);
  } catch (e) {
    console.error(`demo: ${e instanceof Error ? e.message : String(e)}`);
    await stop();
    return 1;
  }

  return new Promise<number>((done) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return; // npm forwards the terminal's Ctrl-C: the same stop, once
      out(`\n${signal}: stopping the hub, the upstream and the identity provider… `);
      void stop().then(() => { out('stopped\n'); done(0); }, (e: unknown) => { console.error(`demo: ${String(e)}`); done(1); });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** A path as one shell word (POSIX sh). */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

process.exitCode = await main();
