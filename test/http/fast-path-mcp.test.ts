/**
 * MCP messages on the fast path (src/http/fast-path.ts, src/proxy/routes.ts `relayMcp`): a message
 * in a cached hub session is read outside Fastify and relayed when the route would stream it as it
 * is; everything else (a refusal, a protocol error, initialize, tools/list, a session not its
 * own) goes to the route with the body already read. Two servers over one hub (fast path on and
 * off) must answer every message alike, and the upstream must receive the same request.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer, fastPathAnswered } from '../../src/http/server.ts';
import { freePort, serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';
import { comparable, type Answer } from '../helpers/comparable.ts';

const VERSION = '2025-11-25';
const UPSTREAM_SESSION = 'upstream-shared-session';

function post(url: string, headers: Record<string, string>, body: string): Promise<Answer> {
  const mcp = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': VERSION, 'content-length': String(Buffer.byteLength(body)) };
  return comparable(url, { ...mcp, ...headers }, 'POST', body);
}

/**
 * A stand-in for Mimir's /mcp: every answer names one shared session (as Mimir's does), a
 * `tools/list` lists two tools, and anything else echoes what arrived (headers, body digest).
 */
async function mcpUpstream(): Promise<Server & { received: number }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      counted.received++;
      const body = Buffer.concat(chunks);
      let message: { id?: unknown; method?: string } = {};
      try { message = JSON.parse(body.toString('utf8')) as typeof message; } catch { /* echoed as it is */ }
      const result = message.method === 'tools/list'
        ? { tools: [{ name: 'memory_node', inputSchema: {} }, { name: 'secret_tool', inputSchema: {} }] }
        : { method: req.method, url: req.url, headers: req.headers, digest: createHash('sha256').update(body).digest('hex'), length: body.length };
      const text = JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result });
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': UPSTREAM_SESSION });
      res.end(text);
    });
  });
  const counted = Object.assign(server, { received: 0 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return counted;
}

const call = (name: string, id: number | string = 1) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { id: 'node-1' } } });

describe('MCP messages on the fast path', () => {
  let t: TestHub;
  let upstream: Server & { received: number };
  let slow: FastifyInstance;
  let slowUrl: string;
  let developer: Record<string, string>;
  let viewer: Record<string, string>;
  const denied: Array<Record<string, unknown>> = [];
  before(async () => {
    upstream = await mcpUpstream();
    t = await startHub({ storage: 'redis', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } });
    slow = await buildServer(t.hub, { fastPath: false });
    const port = await freePort();
    await slow.listen({ port, host: '127.0.0.1' });
    slowUrl = `http://127.0.0.1:${port}`;
    t.hub.audit.observe((e) => { if (e.type === 'access_denied') denied.push(e as Record<string, unknown>); });
    developer = await opened((await serviceAccountToken(t, ['developer'])).token);
    viewer = await opened((await serviceAccountToken(t, ['viewer'])).token);
  });
  after(async () => { await slow.close(); await t.close(); await new Promise((r) => upstream.close(r)); });

  /** A principal's credential and the hub session it opened. */
  async function opened(token: string): Promise<Record<string, string>> {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'test', version: '1' } } });
    const res = await post(`${t.url}/mcp`, { authorization: `Bearer ${token}` }, init);
    assert.equal(res.status, 200, res.body);
    const session = res.headers['mcp-session-id'];
    assert.ok(session && session !== UPSTREAM_SESSION, 'the client gets the hub\'s own session id');
    return { authorization: `Bearer ${token}`, 'mcp-session-id': session };
  }

  /** Posts to both servers (the fast one twice: its first message fills the caches) and compares. */
  async function both(headers: Record<string, string>, body: string): Promise<{ answer: Answer; answeredFast: number }> {
    await post(`${t.url}/mcp`, headers, body);
    const before = fastPathAnswered(t.app)!;
    const fast = await post(`${t.url}/mcp`, headers, body);
    const answeredFast = fastPathAnswered(t.app)! - before;
    const reference = await post(`${slowUrl}/mcp`, headers, body);
    assert.deepEqual(fast, reference, `${body.slice(0, 80)} answers alike on both servers`);
    return { answer: fast, answeredFast };
  }

  it('relays a tools/call the Principal may make: the same answer, and the upstream gets the same request under its own session id', async () => {
    const received = upstream.received;
    const { answer, answeredFast } = await both(developer, call('memory_node'));
    assert.equal(answeredFast, 1, 'relayed on the fast path');
    assert.equal(upstream.received - received, 3);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['mcp-session-id'], developer['mcp-session-id'], 'the answer names the hub session, never the upstream\'s');
    assert.equal(answer.headers.vary, 'Origin');
    assert.equal(answer.headers['x-content-type-options'], 'nosniff');
    const echoed = (JSON.parse(answer.body) as { result: { headers: Record<string, string>; digest: string; url: string } }).result;
    assert.equal(echoed.url, '/mcp');
    assert.equal(echoed.headers['mcp-session-id'], UPSTREAM_SESSION);
    assert.notEqual(echoed.headers.authorization, developer.authorization, 'the caller\'s own token never goes upstream');
    assert.equal(echoed.digest, createHash('sha256').update(call('memory_node')).digest('hex'), 'the body goes on byte for byte');
  });

  it('a notification and a response from the client are relayed too', async () => {
    const note = await both(developer, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    assert.equal(note.answeredFast, 1);
    const reply = await both(developer, JSON.stringify({ jsonrpc: '2.0', id: 'srv-1', result: {} }));
    assert.equal(reply.answeredFast, 1);
  });

  it('a tool the Principal may not use is refused by the route (403, audited once per request), never relayed', async () => {
    const received = upstream.received;
    denied.length = 0;
    const { answer, answeredFast } = await both(viewer, call('memory_node'));
    assert.equal(answeredFast, 0);
    assert.equal(answer.status, 403);
    assert.match(answer.headers['www-authenticate'] ?? '', /insufficient_scope/);
    assert.match(answer.headers['www-authenticate'] ?? '', /resource_metadata=/, 'with the MCP challenge extras, as the route renders it');
    assert.equal(upstream.received, received, 'nothing reached the upstream');
    assert.equal(denied.length, 3, 'one audit event per refused message');
    assert.ok(denied.every((e) => e.mcp_method === 'tools/call' && e.reason === 'insufficient_scope'));
  });

  it('protocol errors are the route\'s: bad JSON, a batch, a header that contradicts the body', async () => {
    const received = upstream.received;
    for (const body of ['{"jsonrpc":"2.0",', JSON.stringify([JSON.parse(call('memory_node'))]), JSON.stringify({ jsonrpc: '2.0', id: { no: 1 }, method: 'ping' })]) {
      const { answer, answeredFast } = await both(developer, body);
      assert.equal(answeredFast, 0);
      assert.equal(answer.status, 400, body);
      assert.equal(answer.headers['cache-control'], 'no-store');
    }
    const mismatch = await both({ ...developer, 'mcp-method': 'tools/list' }, call('memory_node'));
    assert.equal(mismatch.answeredFast, 0);
    assert.equal(mismatch.answer.status, 400);
    assert.match(mismatch.answer.body, /-32020/);
    const name = await both({ ...developer, 'mcp-name': 'secret_tool' }, call('memory_node'));
    assert.equal(name.answer.status, 400);
    assert.equal(upstream.received, received, 'nothing reached the upstream');
  });

  it('tools/list is filtered by the route, and initialize binds a new session there', async () => {
    const { answer, answeredFast } = await both(viewer, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }));
    assert.equal(answeredFast, 0);
    assert.equal(answer.status, 200);
    assert.deepEqual((JSON.parse(answer.body) as { result: { tools: unknown[] } }).result.tools, [], 'a viewer sees no tool');
    const before = fastPathAnswered(t.app)!;
    const init = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'test', version: '1' } } });
    const res = await post(`${t.url}/mcp`, developer, init);
    assert.equal(res.status, 200);
    assert.equal(fastPathAnswered(t.app), before);
    assert.notEqual(res.headers['mcp-session-id'], developer['mcp-session-id'], 'a new hub session');
  });

  it('a session that is not the caller\'s, or none at all, is 404 from the route, as from Fastify', async () => {
    const stolen = await both({ ...developer, authorization: viewer.authorization! }, call('memory_node'));
    assert.equal(stolen.answeredFast, 0);
    assert.equal(stolen.answer.status, 404);
    const unknown = await both({ ...developer, 'mcp-session-id': 'no-such-session' }, call('memory_node'));
    assert.equal(unknown.answer.status, 404);
  });

  it('leaves browsers (Origin), other charsets, other targets and other framings to Fastify', async () => {
    const shapes: Array<{ headers: Record<string, string>; path?: string }> = [
      { headers: { ...developer, origin: new URL(t.hub.config.publicUrl).origin } },
      { headers: { ...developer, 'content-type': 'application/json; charset=utf-16' } },
      { headers: { ...developer, 'content-type': 'text/plain' } },
      { headers: developer, path: '/mcp/' },
      { headers: developer, path: '/mcp?x=1' },
      { headers: { ...developer, 'x-user-id': 'someone' } },
    ];
    for (const { headers, path = '/mcp' } of shapes) {
      await post(`${t.url}${path}`, headers, call('memory_node'));
      const before = fastPathAnswered(t.app)!;
      const fast = await post(`${t.url}${path}`, headers, call('memory_node'));
      assert.equal(fastPathAnswered(t.app), before, `${JSON.stringify(headers).slice(0, 60)} ${path} is Fastify's`);
      assert.deepEqual(fast, await post(`${slowUrl}${path}`, headers, call('memory_node')));
    }
  });

  it('a session ended (DELETE) is not served from the fast path afterwards', async () => {
    const mine = await opened((await serviceAccountToken(t, ['developer'])).token);
    assert.equal((await both(mine, call('memory_node'))).answeredFast, 1);
    const end = await new Promise<number>((resolve, reject) => {
      request(`${t.url}/mcp`, { method: 'DELETE', headers: { ...mine, 'mcp-protocol-version': VERSION } }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject).end();
    });
    assert.equal(end, 200);
    const before = fastPathAnswered(t.app)!;
    const after = await post(`${t.url}/mcp`, mine, call('memory_node'));
    assert.equal(after.status, 404);
    assert.equal(fastPathAnswered(t.app), before);
  });

  it('a caller that goes away mid-body costs nothing: the next message on a new connection is answered', async () => {
    const { port } = new URL(t.url);
    const body = call('memory_node');
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(`POST /mcp HTTP/1.1\r\nhost: mimir.example.test\r\ncontent-type: application/json\r\nmcp-protocol-version: ${VERSION}\r\n`
          + `authorization: ${developer.authorization}\r\nmcp-session-id: ${developer['mcp-session-id']}\r\ncontent-length: ${body.length + 100}\r\n\r\n${body}`);
        setTimeout(() => { socket.destroy(); resolve(); }, 50);
      });
      socket.on('error', reject);
    });
    const res = await post(`${t.url}/mcp`, developer, call('memory_node'));
    assert.equal(res.status, 200);
  });
});
