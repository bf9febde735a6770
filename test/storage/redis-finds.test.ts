/**
 * Issue 20: RedisStore reads the finds of one turn of the event loop with one script (up to 256
 * keys each), as PostgresStore does with one statement. Each find still answers its own record —
 * consumed, expiring, missing, asked twice — and a key that holds something else than a record
 * fails only its own find. On the machine's Redis, under a fresh key prefix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/storage/redis.ts';
import { dropRedisPrefix } from '../../bench/lib/redis.ts';
import { newRedisPrefix, REDIS_URL } from '../helpers/hub.ts';

/** Commands ioredis sends (every connection) while counting. */
function countCommands(): { readonly names: string[]; restore(): void } {
  const proto = Redis.prototype as unknown as { sendCommand: (command: { name: string }, ...rest: unknown[]) => unknown };
  const original = proto.sendCommand;
  const names: string[] = [];
  proto.sendCommand = function (this: unknown, command, ...rest) {
    names.push(command.name);
    return original.call(this, command, ...rest);
  };
  return { names, restore: () => { proto.sendCommand = original; } };
}

describe('Redis store: the finds of one turn', () => {
  const prefix = newRedisPrefix();
  let store: RedisStore;
  before(async () => {
    store = new RedisStore({ url: REDIS_URL, keyPrefix: prefix });
    await store.connect();
    await store.upsertMany(Array.from({ length: 200 }, (_, i) => ({ kind: i % 2 ? 'odd' : 'even', id: `r${i}`, payload: { i } })));
    await store.upsert('even', 'used', { used: true });
    assert.equal(await store.consume('even', 'used'), true);
    await store.upsert('even', 'expiring', { soon: true }, 600);
    assert.equal(await store.increment('count', 'c', 5), 5);
  });
  after(async () => {
    await store?.close();
    await dropRedisPrefix(REDIS_URL, prefix);
  });

  it('300 finds asked in one turn are read by two commands and answer each its own record', async () => {
    const asked: Array<[string, string]> = [];
    for (let i = 0; i < 300; i++) asked.push([i % 3 === 0 ? 'odd' : 'even', `r${i % 250}`]);
    asked.push(['even', 'r0'], ['even', 'r0'], ['even', 'used'], ['odd', 'missing'], ['even', 'expiring'], ['count', 'c']);
    const commands = countCommands();
    let answers;
    try {
      // All asked in this turn, none awaited before the last is asked.
      answers = await Promise.all(asked.map(([kind, id]) => store.find(kind, id)));
    } finally {
      commands.restore();
    }
    assert.equal(commands.names.length, 2, `two commands (256 + 50 keys), not one per find: ${commands.names.slice(0, 5).join(', ')}…`);
    const now = Math.floor(Date.now() / 1000);
    asked.forEach(([kind, id], n) => {
      const answer = answers[n]!;
      if (id === 'used') {
        assert.deepEqual(answer.payload, { used: true });
        assert.ok(answer.consumedAt !== undefined && Math.abs(answer.consumedAt - now) <= 5, 'consumed is told');
        return;
      }
      if (id === 'expiring') {
        assert.ok(answer.expiresAt !== undefined && answer.expiresAt > now + 590 && answer.expiresAt <= now + 602, `expiry told: ${answer.expiresAt}`);
        return;
      }
      if (id === 'c') return assert.equal(answer.payload.value, 5);
      const i = Number(id.slice(1));
      const expected = Number.isInteger(i) && i < 200 && (i % 2 ? 'odd' : 'even') === kind ? { i } : null;
      assert.deepEqual(answer && answer.payload, expected, `find #${n} (${kind}, ${id})`);
      if (answer) assert.equal(answer.expiresAt, undefined);
    });
    // The same key asked twice: two records, not one object shared by both callers.
    assert.notEqual(answers[300], answers[301]);
    assert.deepEqual(answers[300], answers[301]);
  });

  it('a find alone in its turn is one command, as before', async () => {
    const commands = countCommands();
    try {
      assert.deepEqual((await store.find('even', 'r2'))?.payload, { i: 2 });
    } finally {
      commands.restore();
    }
    assert.equal(commands.names.length, 1);
  });

  it('a key holding something else than a record fails only its own find', async () => {
    const raw = new Redis(REDIS_URL);
    try {
      await raw.set(`${prefix}even:not-a-hash`, 'plain string');
      const results = await Promise.allSettled([store.find('even', 'r0'), store.find('even', 'not-a-hash'), store.find('odd', 'r1'), store.find('odd', 'missing')]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? r.value?.payload ?? null : 'refused'), [{ i: 0 }, 'refused', { i: 1 }, null]);
      assert.match(String((results[1] as PromiseRejectedResult).reason), /WRONGTYPE/);
    } finally {
      raw.disconnect();
    }
  });

  it('a kind that cannot be stored is refused as before, without holding up the others', async () => {
    const results = await Promise.allSettled([store.find('bad:kind', 'x'), store.find('even', 'r4')]);
    assert.equal(results[0].status, 'rejected');
    assert.deepEqual(results[1].status === 'fulfilled' && results[1].value?.payload, { i: 4 });
  });
});
