/**
 * A tools/list answered as an event stream is filtered event by event on its way to the caller
 * (src/proxy/routes.ts pipeThrough). Whatever ends first — the upstream mid-stream, or the caller
 * — the other side is closed too, and no listing makes Node warn of a listener leak (the MCP
 * conformance run found stream.pipeline putting eleven 'close' listeners on each response).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { within } from '../helpers/time.ts';
import { RBAC_FIXTURE } from './setup.ts';

const LIST = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} });
const event = (tools: string[]) => `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 7, result: { tools: tools.map((name) => ({ name, inputSchema: { type: 'object' } })) } })}\n\n`;

describe('a tools/list event stream through the hub', () => {
  let upstream: Server;
  let t: TestHub;
  /** What the upstream does after its first event: end, stay open, or reset the connection. */
  let mode: 'end' | 'open' | 'reset' = 'end';
  let closed: Promise<void> = Promise.resolve();

  before(async () => {
    upstream = createServer((req, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        closed = new Promise((resolve) => res.once('close', () => resolve()));
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(event(['memory_search', 'memory_node']));
        if (mode === 'end') res.end();
        else if (mode === 'reset') setTimeout(() => res.socket?.destroy(), 50);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  /** POST the listing; resolves with what arrived and whether the response ended cleanly. */
  function list(key: string, leaveAfterMs?: number): Promise<{ status: number; body: string; ended: boolean }> {
    const { hostname, port } = new URL(t.url);
    return new Promise((resolve) => {
      const req = request({
        hostname, port, path: '/mcp', method: 'POST', agent: false,
        headers: { 'x-api-key': key, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body, ended: true }));
        res.on('error', () => resolve({ status: res.statusCode!, body, ended: false }));
        if (leaveAfterMs !== undefined) setTimeout(() => { req.destroy(); resolve({ status: res.statusCode!, body, ended: false }); }, leaveAfterMs);
      });
      req.on('error', () => undefined);
      req.end(LIST);
    });
  }

  it('arrives filtered to the tools the caller may use, and Node warns of nothing', async () => {
    mode = 'end';
    const warnings: Error[] = [];
    const onWarning = (w: Error) => { warnings.push(w); };
    process.on('warning', onWarning);
    try {
      const analyst = (await t.hub.apiKeys.create({ name: 'analyst', roles: ['analyst'] })).key;
      const developer = (await t.hub.apiKeys.create({ name: 'developer', roles: ['developer'] })).key;
      // Twelve listings on one hub: each used to add seven 'close' listeners to its response.
      for (let i = 0; i < 6; i++) {
        const denied = await within(list(analyst), 5000, 'the analyst\'s listing');
        assert.deepEqual({ status: denied.status, ended: denied.ended, body: denied.body }, { status: 200, ended: true, body: event([]) });
        const allowed = await within(list(developer), 5000, 'the developer\'s listing');
        assert.equal(allowed.body, event(['memory_search', 'memory_node']));
      }
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.map((w) => w.name), []);
  });

  it('an upstream that resets mid-stream: the caller\'s response is cut off, not left open', async () => {
    mode = 'reset';
    const key = (await t.hub.apiKeys.create({ name: 'reset', roles: ['developer'] })).key;
    const r = await within(list(key), 5000, 'the cut-off listing');
    assert.equal(r.status, 200);
    assert.equal(r.ended, false, 'a cut-off stream must not look complete');
    assert.equal(r.body, event(['memory_search', 'memory_node']), 'what arrived before the reset was relayed');
  });

  it('a caller that leaves mid-stream: the upstream\'s answer is closed', async () => {
    mode = 'open';
    const key = (await t.hub.apiKeys.create({ name: 'leaves', roles: ['developer'] })).key;
    const r = await within(list(key, 200), 5000, 'the listing');
    assert.equal(r.body, event(['memory_search', 'memory_node']));
    await within(closed, 5000, 'the upstream\'s answer closing');
  });
});
