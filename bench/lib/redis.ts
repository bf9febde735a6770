/**
 * What a bench run leaves in the shared Redis goes when the run is done: every hub it starts on
 * Redis gets a key prefix of its own, dropped afterwards. (Left behind, 800 000 audit events and
 * tokens of a full run slowed every SCAN of the tests' hubs on the same Redis past their bounds.)
 */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  // redis-cli is not needed: SCAN + UNLINK through ioredis, in pages.
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
