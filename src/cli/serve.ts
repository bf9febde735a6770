import { mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/index.ts';
import { redactUrl } from '../config/index.ts';
import { openHub, type Hub } from '../hub.ts';
import { buildServer } from '../http/server.ts';
import type { Logger } from 'pino';
import { upstreamSecurity } from '../proxy/upstream-probe.ts';
import { allows } from '../rbac/policy.ts';
import { describeStorage } from '../storage/index.ts';
import { lockDataDirectory, type ServerLock } from '../storage/server-lock.ts';
import { dataDirError } from './usage-error.ts';

/** API keys the start banner reads, at most, looking for an admin key to decide on its hint. */
export const BANNER_KEYS_READ = 1000;

/**
 * MIMIR_AUTH_PORT=0 picks a free port: chosen here, before the configuration that names it (the
 * default public URL, and with it the issuer and every advertised endpoint) is built again with
 * it, so nothing advertises port 0. Any other port: `config` as it is.
 */
export async function withPortChosen(config: Config, reload: (env: Record<string, string>) => Config): Promise<Config> {
  if (config.port !== 0) return config;
  const probe = createServer();
  const port = await new Promise<number>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, config.host, () => resolve((probe.address() as AddressInfo).port));
  }).catch((e: unknown) => { throw listenError(e, config); }).finally(() => probe.close());
  return reload({ MIMIR_AUTH_PORT: String(port) });
}

/** Starts the hub and runs until SIGTERM/SIGINT, then drains (see {@link drain}); resolves to the exit code. */
export async function serve(config: Config): Promise<number> {
  // One SQLite directory, one server: refused before anything is opened (src/storage/server-lock.ts).
  let lock: ServerLock | undefined;
  if (config.storage.kind === 'sqlite' || config.session.storage === 'sqlite') {
    try {
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      lock = lockDataDirectory(config.dataDir);
    } catch (e) {
      throw dataDirError(e, config.dataDir);
    }
  }
  let hub: Hub;
  let app: FastifyInstance;
  // What is open so far: nothing of it may keep a process that failed to start alive.
  let opened: Hub | undefined;
  let built: FastifyInstance | undefined;
  try {
    hub = opened = await openHub(config);
    app = built = await buildServer(hub);
    await app.listen({ port: config.port, host: config.host });
  } catch (e) {
    await built?.close().catch(() => undefined);
    await opened?.close().catch(() => undefined);
    lock?.release();
    throw dataDirError(listenError(e, config), config.dataDir);
  }
  // SIGTERM/SIGINT drain from the moment the hub listens (it answers /health, /ready and requests
  // from then on), not only once the banner is out: an orchestrator may stop it at any time.
  const code = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.removeListener('SIGTERM', onTerm);
      process.removeListener('SIGINT', onInt);
      hub.log.info({ signal, timeout_seconds: config.shutdownTimeout }, 'shutting down: finishing in-flight requests');
      void drain(app, hub, config.shutdownTimeout * 1000).then(resolve);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  // Only for the banner's hint (a new installation has a handful of keys); a stop that began
  // meanwhile may have closed the store already. At most BANNER_KEYS_READ keys are read: a store of a
  // million keys was read whole at every start (seconds of CPU on Redis while the hub already served).
  const admins = await hub.apiKeys.anyActive((k) => allows(hub.rbac.permissionsFor(k.roles), 'admin:manage'), { limit: BANNER_KEYS_READ }).catch(() => undefined);
  const hasAdmin = admins !== false
    || config.legacyApiKeys.some((k) => allows(hub.rbac.permissionsFor([...k.roles]), 'admin:manage'));
  const storage = describeStorage(config);
  const lines = [
    `Mimir Auth Hub listening on ${config.tls ? 'https' : 'http'}://${config.host}:${port} (public URL ${config.publicUrl})`,
    `  storage:     ${storage}`,
    `  signing key: ${hub.keys.algorithm} kid=${hub.keys.currentKid}`,
    `  upstream:    ${config.upstreamUrl ?? 'none (set MIMIR_UPSTREAM_URL to proxy Mimir)'}`,
  ];
  if (!hasAdmin) lines.push('', 'No admin API key exists yet. Create one with:', '  npx mimir-auth keys create --name admin --roles admin');
  process.stdout.write(lines.join('\n') + '\n');
  if (config.upstreamUrl) void warnAboutUpstreamSecurity(hub.log, config);

  const exitCode = await code;
  lock?.release();
  // Whatever still holds the event loop (a connection a library keeps retrying) must not keep a
  // stopped server alive: the exit code is decided, so the process goes shortly after.
  setTimeout(() => process.exit(exitCode), 1000).unref();
  return exitCode;
}

/**
 * What the operating system refused when the hub asked for its address, said with the variable
 * that chose it and what would work; any other error as it is.
 */
function listenError(e: unknown, config: Config): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const where = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') {
    return new Error(`MIMIR_AUTH_PORT: port ${config.port} on ${config.host} is already in use (another hub, or another program: \`ss -ltnp 'sport = :${config.port}'\` names it); stop it, or set MIMIR_AUTH_PORT to a free port (1-65535; 0 picks any free one)`, { cause: e });
  }
  if (code === 'EACCES') {
    return new Error(`MIMIR_AUTH_PORT: port ${config.port} on ${config.host} needs privileges this user does not have (ports below 1024); set MIMIR_AUTH_PORT to 1024-65535 and put a proxy or port forward on port ${config.port}`, { cause: e });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new Error(`MIMIR_AUTH_HOST: ${config.host} is not an address of this machine (${where} cannot be bound); use 127.0.0.1, 0.0.0.0 (every interface) or one of this machine's addresses`, { cause: e });
  }
  return e;
}

/**
 * Graceful drain (issue 18, item 5): stop accepting connections; close idle keep-alive
 * connections now and each one as its last request finishes (node:http keeps a keep-alive
 * connection open after server.close() until its timeout, which is what held a stopping hub for
 * 72 s); end open event streams cleanly (the final chunk, so clients see the end and reconnect
 * elsewhere); let in-flight requests finish. 0 once everything is closed; after `timeoutMs`,
 * whatever is left is cut off and the answer is 1.
 */
async function drain(app: FastifyInstance, hub: Hub, timeoutMs: number): Promise<number> {
  const server = app.server;
  // Fastify closes the listener and answers requests arriving on open connections 503 + Connection: close.
  const closed = app.close();
  server.closeIdleConnections();
  const reaper = setInterval(() => server.closeIdleConnections(), 100);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
  const drained = Promise.all([closed, hub.streams.endAll()]).then(() => 'drained' as const, (e: unknown) => e);
  const outcome = await Promise.race([drained, timedOut]);
  clearInterval(reaper);
  clearTimeout(timer);
  let code = 0;
  if (outcome === 'timeout') {
    hub.log.error({ timeout_seconds: timeoutMs / 1000 }, 'shutdown timed out: closing the connections still open');
    server.closeAllConnections();
    await Promise.race([closed.catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    code = 1;
  } else if (outcome !== 'drained') {
    hub.log.error({ err: outcome }, 'shutdown failed');
    code = 1;
  }
  await hub.close().catch((e: unknown) => {
    hub.log.error({ err: e }, 'closing the hub failed');
    code = 1;
  });
  hub.log.info({ code }, code === 0 ? 'drained; exiting' : 'exiting after a forced shutdown');
  return code;
}

/**
 * A Mimir with its own security on refuses what the hub forwards unless the hub mints the tokens
 * it reads (MIMIR_UPSTREAM_AUTH=mimir-jwt): say so at start, naming the variable.
 */
async function warnAboutUpstreamSecurity(log: Logger, config: Config): Promise<void> {
  const security = await upstreamSecurity(config.upstreamUrl!);
  if (security === 'on' && config.upstreamAuth.mode !== 'mimir-jwt') {
    log.warn({ upstream: redactUrl(config.upstreamUrl!), upstream_auth: config.upstreamAuth.mode },
      'the upstream Mimir has its own security on (MIMIR_ENABLE_SECURITY): set MIMIR_UPSTREAM_AUTH=mimir-jwt and MIMIR_UPSTREAM_JWT_SECRET to its MIMIR_JWT_SECRET, or every proxied request will be refused');
  }
}
