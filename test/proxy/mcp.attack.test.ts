/**
 * Attacker's review (after issue 19): the hub authorizes an MCP message by reading its body as
 * UTF-8, while Mimir (Express's json parser, as the MCP SDK's own reader) decodes it with the
 * charset the Content-Type names. Any charset in which the same bytes spell another JSON
 * document lets a caller show the hub one message and Mimir another.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFront, type Front } from './setup.ts';

const ACCEPT = 'application/json, text/event-stream';

/** UTF-7 (RFC 2152) spells `"` as `+ACI-`: text that is one JSON string in UTF-8. */
const utf7Quotes = (s: string) => s.replace(/"/g, '+ACI-');

describe('/mcp: the message the hub authorizes is the message Mimir runs, whatever the charset', () => {
  let f: Front;
  let viewer: string;
  let session: string;

  before(async () => {
    f = await startFront();
    // A viewer holds no mcp:tool:* permission: every tools/call of theirs must be refused.
    viewer = (await f.t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
    const init = await fetch(`${f.t.url}/mcp`, {
      method: 'POST', headers: { 'x-api-key': viewer, 'content-type': 'application/json', accept: ACCEPT },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'attacker', version: '1' } } }),
    });
    assert.equal(init.status, 200);
    await init.text();
    session = init.headers.get('mcp-session-id')!;
    const initialized = await fetch(`${f.t.url}/mcp`, {
      method: 'POST', headers: { 'x-api-key': viewer, 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    await initialized.text();
  });
  after(async () => { await f.close(); });

  it('a tools/call the viewer may not make is refused, so the control holds', async () => {
    const res = await fetch(`${f.t.url}/mcp`, {
      method: 'POST', headers: { 'x-api-key': viewer, 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': session },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'memory_node', arguments: { title: 'direct' } } }),
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json() as { error: string }).error, 'insufficient_scope');
  });

  it('a tools/call of a tool named outside ASCII is refused the same way, its challenge still a header (was a 500)', async () => {
    for (const name of ['€', 'tool\u0007bell', 'naïve', 'tool"quote\\']) {
      const res = await fetch(`${f.t.url}/mcp`, {
        method: 'POST', headers: { 'x-api-key': viewer, 'content-type': 'application/json', accept: ACCEPT, 'mcp-session-id': session },
        body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name, arguments: {} } }),
      });
      assert.equal(res.status, 403, name);
      assert.equal((await res.json() as { error: string }).error, 'insufficient_scope', name);
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Bearer .*error="insufficient_scope"/, name);
      assert.match(challenge, /^[\x20-\x7e]+$/, `printable ASCII: ${challenge}`);
    }
  });

  it('a body declared charset=utf-7 that reads as tools/list in UTF-8 and tools/call in UTF-7 never runs the tool', async () => {
    // As UTF-8 (what the hub reads): tools/list, with one string in params._meta.
    // As UTF-7 (what Mimir reads): the string closes early, and a later "method" and "params" win.
    const hidden = utf7Quotes('"}},"method":"tools/call","params":{"name":"memory_node","arguments":{"title":"smuggled","z":"');
    const body = `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"x":"${hidden}"}}}`;
    assert.equal(JSON.parse(body).method, 'tools/list', 'the hub\'s reading');
    const before = f.upstream.find('/mcp').length;
    const res = await fetch(`${f.t.url}/mcp`, {
      method: 'POST',
      headers: { 'x-api-key': viewer, 'content-type': 'application/json; charset=utf-7', accept: ACCEPT, 'mcp-session-id': session },
      body,
    });
    const text = await res.text();
    assert.doesNotMatch(text, /created smuggled/, 'the memory_node tool ran for a viewer');
    // Fail closed: refused before the upstream (a charset the hub does not read as Mimir does: 400
    // or 415; read as Mimir does: the viewer's tools/call, 403).
    assert.ok([400, 403, 415].includes(res.status), `refused, not ${res.status}`);
    assert.equal(f.upstream.find('/mcp').length, before, 'never forwarded');
  });
});
