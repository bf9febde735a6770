import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFront, type Front } from './setup.ts';

const ACCEPT = 'application/json, text/event-stream';

describe('/mcp: the two streamable HTTP revisions, Origin and sessions', () => {
  let f: Front;
  let alice: string;
  let bob: string;
  before(async () => {
    f = await startFront({ env: { MIMIR_MCP_ALLOWED_ORIGINS: 'https://app.example' } });
    alice = (await f.t.hub.apiKeys.create({ name: 'alice', roles: ['developer'] })).key;
    bob = (await f.t.hub.apiKeys.create({ name: 'bob', roles: ['developer'] })).key;
  });
  after(async () => { await f.close(); });

  const post = (key: string, body: unknown, headers: Record<string, string> = {}) => fetch(`${f.t.url}/mcp`, {
    method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json', accept: ACCEPT, ...headers }, body: JSON.stringify(body),
  });
  const initialize = async (key: string) => {
    const res = await post(key, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    assert.equal(res.status, 200);
    await res.text();
    return res.headers.get('mcp-session-id')!;
  };

  it('2026-07-28: GET /mcp answers 405', async () => {
    const res = await fetch(`${f.t.url}/mcp`, { headers: { 'x-api-key': alice, accept: 'text/event-stream', 'mcp-protocol-version': '2026-07-28' } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
  });

  it('2026-07-28: an Mcp-Method header that differs from the body is refused with HeaderMismatch', async () => {
    const before = f.upstream.find('/mcp').length;
    const res = await post(alice, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'memory_node', arguments: {} } },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' });
    assert.equal(res.status, 400);
    const body = await res.json() as { id: number; error: { code: number } };
    assert.equal(body.error.code, -32020);
    assert.equal(body.id, 5);
    assert.equal(f.upstream.find('/mcp').length, before, 'refused before the upstream');
  });

  it('2026-07-28: an Mcp-Name header that differs from params.name is refused', async () => {
    const res = await post(alice, { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'memory_node', arguments: {} } },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'memory_search' });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: { code: number } }).error.code, -32020);
  });

  it('2026-07-28: a request without the standard headers is refused', async () => {
    const res = await post(alice, { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: { code: number } }).error.code, -32020);
  });

  it('2026-07-28: a base64-encoded Mcp-Name that matches is accepted and passed on', async () => {
    const before = f.upstream.find('/mcp').length;
    const name = 'memory_search';
    const res = await post(alice, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name, arguments: { query: 'x' } } },
      { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from(name).toString('base64')}?=` });
    await res.text();
    assert.equal(f.upstream.find('/mcp').length, before + 1);
  });

  it('a viewer\'s tools/call is refused with 403 before the upstream, whatever the headers say', async () => {
    const viewer = (await f.t.hub.apiKeys.create({ name: 'v', roles: ['viewer'] })).key;
    const res = await post(viewer, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'memory_node', arguments: {} } });
    assert.equal(res.status, 403);
    assert.equal((await res.json() as { error: string }).error, 'insufficient_scope');
  });

  it('JSON-RPC batches are refused', async () => {
    const res = await post(alice, [{ jsonrpc: '2.0', id: 1, method: 'tools/list' }]);
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: { code: number } }).error.code, -32600);
  });

  it('an Origin that is not allowed is refused with 403 (DNS rebinding)', async () => {
    const res = await post(alice, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { origin: 'http://evil.example:9042' });
    assert.equal(res.status, 403);
    const ok = await post(alice, { jsonrpc: '2.0', id: 1, method: 'ping' }, { origin: 'https://app.example' });
    assert.notEqual(ok.status, 403);
    await ok.text();
  });

  it('2025-11-25: a session belongs to the principal that opened it', async () => {
    const session = await initialize(alice);
    assert.ok(session);
    const stolen = await post(bob, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(stolen.status, 404);
    await stolen.text();
    const own = await post(alice, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(own.status, 200);
    assert.match(await own.text(), /memory_search/);
  });

  it('2025-11-25: the GET event stream of a session is proxied', async () => {
    const session = await initialize(alice);
    const controller = new AbortController();
    const res = await fetch(`${f.t.url}/mcp`, { headers: { 'x-api-key': alice, accept: 'text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' }, signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    controller.abort();
    const end = await fetch(`${f.t.url}/mcp`, { method: 'DELETE', headers: { 'x-api-key': alice, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(end.status, 200);
    const after = await post(alice, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, { 'mcp-session-id': session });
    assert.equal(after.status, 404, 'a deleted session is gone');
  });
});
