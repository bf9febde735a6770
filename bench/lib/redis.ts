/**
 * What a bench run leaves in the shared Redis goes when the run is done: every hub it starts on
 * Redis gets a key prefix of its own, dropped afterwards. (Left behind, 800 000 audit events and
 * tokens of a full run slowed every SCAN of the tests' hubs on the same Redis past their bounds.)
 *
 * Only keys that begin with `prefix` go: its glob characters (`*?[]\`) are matched literally, and an
 * empty prefix (every key of the database) is refused.
 */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  if (prefix === '') throw new Error('dropRedisPrefix: an empty prefix would be every key of the database');
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  // redis-cli is not needed: SCAN + UNLINK through ioredis, in pages.
  const { Redis } = await import('ioredis');
  // One try: a Redis that is not there fails the call instead of being retried in the background.
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => { /* the call rejects with it */ });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
