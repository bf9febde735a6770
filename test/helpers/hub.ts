/**
 * Starts a real hub on a loopback port for a test: real Fastify, real storage.
 * `storage: 'redis'` uses MIMIR_TEST_REDIS_URL with a fresh key prefix.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { openHub, type Hub } from '../../src/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { createLogger } from '../../src/logger.ts';
import { dropRedisPrefix } from '../../bench/lib/redis.ts';
import { freePort } from './port.ts';

export { freePort };

export const REDIS_URL = process.env.MIMIR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestHub {
  url: string;
  hub: Hub;
  app: FastifyInstance;
  config: Config;
  dataDir: string;
  close(options?: { keepData?: boolean }): Promise<void>;
}

export interface StartOptions {
  storage?: 'memory' | 'sqlite' | 'redis' | 'postgres';
  env?: Record<string, string>;
  /** Reuse a data directory (restart tests). */
  dataDir?: string;
  /** Reuse a Redis key prefix (restart / multi-instance tests). */
  redisPrefix?: string;
  now?: () => number;
  /** Where the hub's operational log goes (with `env.MIMIR_LOG_LEVEL`); default stdout, silent. */
  logDestination?: DestinationStream;
}

/**
 * A fresh key prefix, under MIMIR_TEST_REDIS_NAMESPACE when set (npm test sets one per run and drops
 * it when the run ends, leaving other runs' keys on a shared Redis alone), else `mimir-test:`.
 */
export function newRedisPrefix(): string {
  return `${process.env.MIMIR_TEST_REDIS_NAMESPACE || 'mimir-test:'}${randomBytes(6).toString('hex')}:`;
}

export async function startHub(options: StartOptions = {}): Promise<TestHub> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'mimir-hub-test-'));
  const storage = options.storage ?? 'sqlite';
  // The helper's own prefix, when the test gives none (redisPrefix or env): the only one it drops.
  const ownPrefix = options.redisPrefix === undefined && options.env?.MIMIR_REDIS_KEY_PREFIX === undefined ? newRedisPrefix() : undefined;
  const env: Record<string, string> = {
    MIMIR_AUTH_PORT: '0',
    MIMIR_DATA_DIR: dataDir,
    MIMIR_TOKEN_STORAGE: storage,
    MIMIR_REDIS_URL: REDIS_URL,
    MIMIR_REDIS_KEY_PREFIX: options.redisPrefix ?? ownPrefix ?? newRedisPrefix(),
    MIMIR_LOG_AUTH_EVENTS: 'false',
    MIMIR_LOG_LEVEL: 'silent',
    ...options.env,
  };
  // The public URL must name the real port, so listen first on a port we pick.
  const port = options.env?.MIMIR_AUTH_PORT ?? String(await freePort());
  env.MIMIR_AUTH_PORT = port;
  env.MIMIR_PUBLIC_URL ??= `http://127.0.0.1:${port}`;
  const config = loadConfig(env, { dotenv: false });
  const hub = await openHub(config, { logger: createLogger(config.logLevel, options.logDestination), ...(options.now ? { now: options.now } : {}) });
  const app = await buildServer(hub);
  await app.listen({ port: Number(port), host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${port}`,
    hub, app, config, dataDir,
    async close({ keepData = false } = {}) {
      await app.close();
      await hub.close();
      if (!keepData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      // Its keys leave the shared Redis with it (CI runs on the machine's Redis as the tests leave it);
      // a prefix the test chose may be another hub's too, or anyone's, and stays.
      const usesRedis = config.storage.kind === 'redis' || config.session.storage === 'redis';
      if (!keepData && ownPrefix !== undefined && config.storage.redis.keyPrefix === ownPrefix && usesRedis) await dropRedisPrefix(REDIS_URL, ownPrefix);
    },
  };
}

/** A service account and its token, the common test setup. */
export async function serviceAccountToken(t: TestHub, roles = ['developer'], clientId = `svc-${randomBytes(3).toString('hex')}`): Promise<{ clientId: string; secret: string; token: string }> {
  const { clientSecret } = await t.hub.serviceAccounts.create({ clientId, roles });
  const res = await fetch(`${t.url}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  const body = await res.json() as { access_token: string };
  return { clientId, secret: clientSecret, token: body.access_token };
}
