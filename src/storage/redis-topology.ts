/**
 * Where the Redis servers are, and how to name them in messages: no ioredis here, so the
 * configuration and the start banner read this without loading the driver (a hub on SQLite or
 * PostgreSQL never loads it; see createStore).
 */
import { redactUrl, type HostPort } from '../config/values.ts';

/** Where the Redis servers are. `standalone`: the host and port of the URL. */
export type RedisTopology =
  | { readonly kind: 'standalone' }
  | {
    readonly kind: 'sentinel';
    /** Sentinels to ask for the master (more are discovered from them). */
    readonly sentinels: readonly HostPort[];
    /** The master name they monitor (`sentinel monitor <name> …`). */
    readonly name: string;
    /** The sentinels' own password (their `requirepass`), when they have one. */
    readonly sentinelPassword?: string | undefined;
  }
  | {
    readonly kind: 'cluster';
    /** Some nodes of the cluster; the others are discovered from them. */
    readonly nodes: readonly HostPort[];
  };

export const STANDALONE: RedisTopology = Object.freeze({ kind: 'standalone' });

/** For messages and the start banner: where the data is, no password shown. */
export function describeRedis(options: { url: string; db?: number | undefined; topology?: RedisTopology | undefined }): string {
  const topology = options.topology ?? STANDALONE;
  const list = (nodes: readonly HostPort[]) => nodes.map(formatHostPort).join(',');
  const db = options.db ?? fromUrl(options.url).db ?? 0;
  switch (topology.kind) {
    case 'standalone':
      return `${redactUrl(options.url)}, db ${db}`;
    case 'sentinel':
      return `Sentinel master "${topology.name}" via ${list(topology.sentinels)}, db ${db}`;
    case 'cluster':
      return `Cluster at ${list(topology.nodes)}`;
  }
}

/** The variables that say where Redis is, for "check …" hints. */
export function redisVariables(topology: RedisTopology = STANDALONE): string {
  return topology.kind === 'sentinel' ? 'MIMIR_REDIS_SENTINELS, MIMIR_REDIS_SENTINEL_NAME'
    : topology.kind === 'cluster' ? 'MIMIR_REDIS_CLUSTER_NODES' : 'MIMIR_REDIS_URL';
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What the URL says besides its host: credentials, database, TLS. */
export function fromUrl(url: string): { auth: { username?: string; password?: string }; db: number | undefined; tls: boolean } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { auth: {}, db: undefined, tls: false };
  }
  const auth: { username?: string; password?: string } = {};
  if (parsed.username) auth.username = decodeURIComponent(parsed.username);
  if (parsed.password) auth.password = decodeURIComponent(parsed.password);
  const path = parsed.pathname.replace(/^\//, '');
  return { auth, db: /^\d+$/.test(path) ? Number(path) : undefined, tls: parsed.protocol === 'rediss:' };
}
