/**
 * MCP session bindings: only the owner resolves its session, and its expiry slides — at most once
 * an hour (issue 20: a write for every MCP message was most of what the hub added to a tools/call).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/storage/memory.ts';
import { bindSession, MCP_SESSION_SLIDE_SECONDS, MCP_SESSION_TTL_SECONDS, resolveSession } from '../../src/proxy/mcp-sessions.ts';
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
});
