import type { Config } from '../config/index.ts';
import { redactUrl } from '../config/index.ts';
import { openHub } from '../hub.ts';
import { describeRedis } from '../storage/redis-connection.ts';
import { buildServer } from '../http/server.ts';
import type { Logger } from 'pino';
import { upstreamSecurity } from '../proxy/upstream-probe.ts';
import { allows } from '../rbac/policy.ts';

/** Starts the hub and runs until SIGTERM/SIGINT, finishing in-flight requests before exit. */
export async function serve(config: Config): Promise<number> {
  const hub = await openHub(config);
  const app = await buildServer(hub);
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;

  const hasAdmin = (await hub.apiKeys.list()).some((k) => k.status === 'active' && allows(hub.rbac.permissionsFor(k.roles), 'admin:manage'))
    || config.legacyApiKeys.some((k) => allows(hub.rbac.permissionsFor([...k.roles]), 'admin:manage'));
  const storage = config.storage.kind === 'redis' ? `redis (${describeRedis(config.storage.redis)})` : config.storage.kind === 'sqlite' ? `sqlite (${config.storage.sqlitePath})` : 'memory (development only: nothing survives a restart)';
  const lines = [
    `Mimir Auth Hub listening on ${config.tls ? 'https' : 'http'}://${config.host}:${port} (public URL ${config.publicUrl})`,
    `  storage:     ${storage}`,
    `  signing key: ${hub.keys.algorithm} kid=${hub.keys.currentKid}`,
    `  upstream:    ${config.upstreamUrl ?? 'none (set MIMIR_UPSTREAM_URL to proxy Mimir)'}`,
  ];
  if (!hasAdmin) lines.push('', 'No admin API key exists yet. Create one with:', '  npx mimir-auth keys create --name admin --roles admin');
  process.stdout.write(lines.join('\n') + '\n');
  if (config.upstreamUrl) void warnAboutUpstreamSecurity(hub.log, config);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      hub.log.info({ signal }, 'shutting down: finishing in-flight requests');
      const force = setTimeout(() => { hub.log.error('shutdown timed out after 10 s'); resolve(1); }, 10_000);
      force.unref();
      app.close()
        .then(() => hub.close())
        .then(() => { clearTimeout(force); resolve(0); })
        .catch((e: unknown) => { hub.log.error({ err: e }, 'shutdown failed'); resolve(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
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
