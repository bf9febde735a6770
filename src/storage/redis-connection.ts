/**
 * The ioredis client behind RedisStore, for each way of running Redis: one server (the host of
 * MIMIR_REDIS_URL), a master found through Redis Sentinel and followed across failovers, or a Redis
 * Cluster. The URL's user, password, database and `rediss:` scheme apply to all three; the
 * connection behaviour RedisStore asks for (timeouts, retries, keepalive) is passed to whichever
 * client is built.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { fromUrl, type RedisTopology } from './redis-topology.ts';

export type RedisClient = Redis | Cluster;

/**
 * Builds (does not connect) the client for `topology`. `options` is the connection behaviour for a
 * single server; for a Cluster, `retryStrategy`, `enableOfflineQueue` and `lazyConnect` become the
 * cluster's own, the rest applies to each node's connection.
 */
export function openRedisClient(url: string, db: number | undefined, topology: RedisTopology, options: RedisOptions): RedisClient {
  switch (topology.kind) {
    case 'standalone':
      return new Redis(withDb(url, db), options);
    case 'sentinel': {
      const target = fromUrl(url);
      // When no sentinel answers, ioredis retries them inside one connection attempt; giving up
      // there ends the client for good. So: give up (and fail) only until the first connection,
      // so a hub started with wrong sentinels fails at start instead of hanging; after that, retry
      // as `retryStrategy` says. (A duplicate, e.g. the subscriber, shares this state.)
      const state = { connected: false };
      const retry = options.retryStrategy ?? ((times: number) => Math.min(times * 200, 2000));
      const client = new Redis({
        sentinelRetryStrategy: (times) => (state.connected ? retry(times) : null),
        ...(options.connectTimeout === undefined ? {} : { sentinelCommandTimeout: options.connectTimeout }),
        // A master demoted while still up (a manual failover, a healed partition) answers writes
        // with READONLY: reconnect, through the sentinels, to the new master and resend that
        // command, which was not executed. (A master that dies drops its connections, and the
        // reconnection asks the sentinels anyway.)
        reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
        ...options,
        sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
        name: topology.name,
        ...(topology.sentinelPassword === undefined ? {} : { sentinelPassword: topology.sentinelPassword }),
        ...target.auth,
        db: db ?? target.db ?? 0,
        // rediss: TLS to the sentinels and to the master alike.
        ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      });
      client.once('ready', () => (state.connected = true));
      return client;
    }
    case 'cluster': {
      const target = fromUrl(url);
      const effectiveDb = db ?? target.db ?? 0;
      if (effectiveDb !== 0) throw new Error(`a Redis Cluster has only database 0, not ${effectiveDb}`);
      const { retryStrategy, enableOfflineQueue, lazyConnect, ...node } = options;
      const cluster: ClusterOptions = {
        ...(lazyConnect === undefined ? {} : { lazyConnect }),
        ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
        ...(retryStrategy === undefined ? {} : { clusterRetryStrategy: retryStrategy }),
        redisOptions: { ...withoutServerFields(node), ...target.auth, ...(target.tls ? { tls: {} } : {}) },
      };
      return new Cluster(topology.nodes.map(({ host, port }) => ({ host, port })), cluster);
    }
  }
}

/** How long a write waits for a replica's acknowledgement, and how long it stops asking when none came. */
export const REPLICA_WAIT_MS = 100;
const REPLICA_RETRY_MS = 5000;

/**
 * Sentinel: Redis replicates asynchronously, so a write the master acknowledged and then died with
 * would be lost in the failover (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/#consistency-under-partitions):
 * a revocation forgotten, a consumed one-time credential usable again. So after each write the
 * store asks the master to wait until a replica holds it (WAIT 1, on the same connection), up to
 * REPLICA_WAIT_MS; Sentinel promotes the most up-to-date replica, so what was acknowledged survives
 * the master's death. When no replica acknowledges in time (none connected, e.g. right after a
 * failover), writes go on without waiting for REPLICA_RETRY_MS, so a lone master costs no latency.
 * Other topologies: nothing to wait for (a Cluster's replicas, if any, are not covered).
 */
export function replicaAcknowledgement(client: RedisClient, topology: RedisTopology): () => Promise<void> {
  if (topology.kind !== 'sentinel' || client instanceof Cluster) return async () => {};
  let skipUntil = 0;
  return async () => {
    if (Date.now() < skipUntil) return;
    if ((await client.wait(1, REPLICA_WAIT_MS)) < 1) skipUntil = Date.now() + REPLICA_RETRY_MS;
  };
}

/** Every node of the client that holds data: the one server, the master, or each cluster master. */
export function dataNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/**
 * The connection a PUBLISH goes through. A Cluster forwards a PUBLISH to every node, but ioredis
 * sends a command without a key through any node, and two messages sent through different nodes can
 * overtake each other on the way. Through one node, the same for every hub (the lowest address),
 * they arrive in the order sent.
 */
export function publisher(client: RedisClient): Pick<Redis, 'publish'> {
  if (!(client instanceof Cluster)) return client;
  const address = (node: Redis) => `${node.options.host}:${node.options.port}`;
  const [first] = client.nodes('master').sort((x, y) => (address(x) < address(y) ? -1 : address(x) > address(y) ? 1 : 0));
  return first ?? client;
}

/** A second client like `client` (same servers and options), e.g. for subscriber mode. */
export function duplicateClient(client: RedisClient): RedisClient {
  return client.duplicate();
}

function withDb(url: string, db: number | undefined): string {
  if (db === undefined) return url;
  const parsed = new URL(url);
  parsed.pathname = `/${db}`;
  return parsed.toString();
}

/** The single-server fields a cluster's per-node options must not carry. */
function withoutServerFields(options: Omit<RedisOptions, 'retryStrategy' | 'enableOfflineQueue' | 'lazyConnect'>): NonNullable<ClusterOptions['redisOptions']> {
  const { host: _host, port: _port, path: _path, sentinels: _sentinels, readOnly: _readOnly, db: _db, ...rest } = options;
  return rest;
}
