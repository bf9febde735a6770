/**
 * POST /mcp with a Content-Encoding: the hub authorizes the bytes as sent, while Mimir's body
 * parser inflates gzip, deflate and br and would act on bytes the hub never read (the parser
 * differential refused for charsets too). Refused, 415, never forwarded. Found by an attacker's
 * review; each refusal test failed at 8f29cfc (forwarded, Mimir answered 500).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { RBAC_FIXTURE } from '../proxy/setup.ts';

describe('an MCP message with a Content-Encoding', () => {
  let mimir: Mimir;
  let t: TestHub;
  let key: string;
  before(async () => {
    mimir = await startMimir();
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
    key = (await t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
  });
  after(async () => { await t?.close(); await mimir?.close(); });

  for (const encoding of ['gzip', 'deflate', 'br']) {
    it(`${encoding}: the body the hub authorized is not what Mimir would decode, so it is refused (415) and never forwarded`, async () => {
      const before = mimir.received.length;
      const res = await rawRequest(t.url, {
        method: 'POST', target: '/mcp',
        headers: [['X-API-Key', key], ['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream'], ['Content-Encoding', encoding]],
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      assert.equal(mimir.received.length, before, `forwarded to Mimir with Content-Encoding: ${encoding} (hub answered ${res.status}: ${res.body.slice(0, 100)})`);
      assert.equal(res.status, 415);
      assert.equal(JSON.parse(res.body).error, 'unsupported_media_type');
    });
  }

  it('identity (no coding) is the body as sent: relayed', async () => {
    const before = mimir.received.length;
    const res = await rawRequest(t.url, {
      method: 'POST', target: '/mcp',
      headers: [['X-API-Key', key], ['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream'], ['Content-Encoding', 'identity']],
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });
    assert.equal(res.status, 200, res.body.slice(0, 200));
    assert.equal(mimir.received.length, before + 1);
  });
});
