/**
 * MCP session bindings: only the owner resolves its session, and its expiry slides — at most once
 * an hour (issue 20: a write for every MCP message was most of what the hub added to a tools/call).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/storage/memory.ts';
import { bindSession, MCP_SESSION_ENDED_CHANNEL, MCP_SESSION_SLIDE_SECONDS, MCP_SESSION_TTL_SECONDS, resolveSession, unbindSession, type McpSessionCache } from '../../src/proxy/mcp-sessions.ts';
import { RecordCache } from '../../src/cache/records.ts';
import { hashSecret } from '../../src/crypto/index.ts';

describe('MCP session bindings', () => {
  it('resolve for the owner only; the expiry slides at most once per MCP_SESSION_SLIDE_SECONDS, and an idle session ends', async () => {
    let now = 1_800_000_000_000;
    const store = new MemoryStore({ now: () => now });
    let writes = 0;
    const upsert = store.upsert.bind(store);
    store.upsert = async (...args) => { writes++; return upsert(...args); };
    const id = await bindSession(store, 'upstream-1', 'alice', {});
    const expiry = async () => (await store.find('mcp_session', hashSecret(id)))?.expiresAt;
    const first = await expiry();
    assert.equal(first, now / 1000 + MCP_SESSION_TTL_SECONDS);
    writes = 0;

    assert.equal(await resolveSession(store, id, 'mallory', now), null, 'another principal does not get it');
    for (let i = 0; i < 50; i++) assert.equal((await resolveSession(store, id, 'alice', now))?.upstream, 'upstream-1');
    assert.equal(writes, 0, 'messages within the hour write nothing');
    assert.equal(await expiry(), first);

    now += (MCP_SESSION_SLIDE_SECONDS + 1) * 1000;
    assert.ok(await resolveSession(store, id, 'alice', now));
    assert.equal(writes, 1, 'past the hour, one message slides the expiry');
    assert.equal(await expiry(), now / 1000 + MCP_SESSION_TTL_SECONDS);

    now += MCP_SESSION_TTL_SECONDS * 1000;
    assert.equal(await resolveSession(store, id, 'alice', now), null, 'idle for the whole TTL: gone');
  });

  it('with a cache: one store read per session, not per message; a session ended on another instance or past its expiry is not served from it', async () => {
    let now = 1_800_000_000_000;
    const store = new MemoryStore({ now: () => now });
    let finds = 0;
    const find = store.find.bind(store);
    store.find = async (...args) => { finds++; return find(...args); };
    // Two instances on one store: each its own cache, fed by the store's messages.
    const instance = async (): Promise<McpSessionCache> => {
      const cache: McpSessionCache = new RecordCache({ maxEntries: 100, maxAgeMs: 5_000, now: () => now });
      await store.subscribe(MCP_SESSION_ENDED_CHANNEL, (key) => cache.forget(key));
      return cache;
    };
    const [a, b] = [await instance(), await instance()];
    const id = await bindSession(store, 'upstream-1', 'alice', {});
    for (let i = 0; i < 20; i++) assert.equal((await resolveSession(store, id, 'alice', now, a))?.upstream, 'upstream-1');
    assert.equal(finds, 1, 'read once, then from the cache');
    assert.equal(await resolveSession(store, id, 'mallory', now, a), null, 'the owner is checked on every message, cached or not');

    const binding = (await resolveSession(store, id, 'alice', now, b))!;
    assert.deepEqual(await unbindSession(store, id, binding, b), { last: true });
    assert.equal(await resolveSession(store, id, 'alice', now, a), null, 'ended on B: A no longer serves it');

    const other = await bindSession(store, 'upstream-2', 'alice', {});
    assert.ok(await resolveSession(store, other, 'alice', now, a));
    now += (MCP_SESSION_TTL_SECONDS + 1) * 1000;
    assert.equal(await resolveSession(store, other, 'alice', now, a), null, 'past its expiry, the cached binding is not used');
  });
});

