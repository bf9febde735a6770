/**
 * The relay's exchanges end cleanly whatever ends first: an MCP answer whose session binding is
 * still being stored when the caller or the upstream goes away, a binding that fails, and an
 * upstream that answers before the caller's upload is done. (From a review of the move to undici.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { freePort, startHub, type TestHub } from '../helpers/hub.ts';
import { within } from '../helpers/time.ts';

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'test', version: '1' } } });

describe('relay: exchanges that end early', () => {
  let upstream: Server;
  let t: TestHub;
  let key: string;
  /** What /mcp does after its first event: stay open, or reset the connection. */
  let mcpMode: 'open' | 'reset' = 'open';
  /** Resolves when the upstream's current /mcp answer closes. */
  let mcpClosed: Promise<void> = Promise.resolve();
  let mcpOpened: Promise<void> = Promise.resolve();
  /** How long, and whether, storing an MCP session binding takes or fails. */
  let binding: { delayMs: number; fail: boolean } = { delayMs: 0, fail: false };

  before(async () => {
    upstream = createServer((req, res) => {
      if (req.url === '/api/nodes/early') {
        // Answers at once, without reading the upload (as a 413 or a 401 would).
        res.writeHead(413, { 'content-type': 'text/plain', 'content-length': 9 });
        res.end('too large');
        return;
      }
      if (req.url === '/mcp') {
        let raw = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => { raw += c; });
        req.on('end', () => {
          if ((JSON.parse(raw) as { method: string }).method !== 'tools/list') return mcpAnswer(res);
          // A JSON tools/list answer cut off half-way (the hub reads it whole to filter it).
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
          res.write('{"jsonrpc":"2.0","id":2,"result":{"tools":[');
          setTimeout(() => res.socket?.destroy(), 50);
        });
        return;
      }
      req.resume();
      req.on('end', () => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }); res.end('ok'); });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } });
    // These tests are about relaying: the key may reach any upstream path (upstream:access, which * holds).
    key = (await t.hub.apiKeys.create({ name: 'relay', roles: ['admin'] })).key;
    // Storing a session binding is a network round trip on Redis; here it takes as long as the
    // test says, or fails, so the window between the answer's headers and the relay is wide.
    const store = t.hub.store;
    const upsert = store.upsert.bind(store);
    store.upsert = (async (kind: string, ...rest: unknown[]) => {
      if (kind === 'mcp_session') {
        await new Promise((resolve) => setTimeout(resolve, binding.delayMs));
        if (binding.fail) throw new Error('the store is down');
      }
      return (upsert as (...a: unknown[]) => Promise<unknown>)(kind, ...rest);
    }) as typeof store.upsert;
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  /** An MCP event stream with a session id: one event, then open (an event every 10 ms) or reset. */
  function mcpAnswer(res: ServerResponse): void {
    let opened!: () => void;
    mcpOpened = new Promise((resolve) => { opened = resolve; });
    mcpClosed = new Promise((resolve) => res.once('close', () => resolve()));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'mcp-session-id': `s-${Math.random().toString(36).slice(2)}` });
    res.write('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
    opened();
    if (mcpMode === 'reset') {
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    const tick = setInterval(() => { if (!res.destroyed) res.write(': keep-alive\n\n'); }, 10);
    res.once('close', () => clearInterval(tick));
  }

  /** POST /mcp with `message`; resolves with the status (or 'gone' when the connection ended first) and the body. */
  function postMcp(message: string, options: { leaveAfterMs?: number; headers?: Record<string, string> } = {}): Promise<{ status: number | 'gone'; body: string }> {
    const { hostname, port } = new URL(t.url);
    return new Promise((resolve) => {
      const req = request({
        hostname, port, path: '/mcp', method: 'POST', agent: false,
        headers: { 'x-api-key': key, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(message), ...options.headers },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
        res.on('error', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', () => resolve({ status: 'gone', body: '' }));
      req.end(message);
      if (options.leaveAfterMs !== undefined) setTimeout(() => { req.destroy(); resolve({ status: 'gone', body: '' }); }, options.leaveAfterMs);
    });
  }
  const initialize = (leaveAfterMs?: number) => postMcp(INITIALIZE, leaveAfterMs === undefined ? {} : { leaveAfterMs });

  async function stillServes(): Promise<void> {
    const r = await within(fetch(`${t.url}/api/nodes/x`, { headers: { 'x-api-key': key } }), 5000, 'an answer afterwards');
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'ok');
  }

  it('a caller that leaves while its MCP session is being bound: the upstream answer is closed, the hub keeps serving', async () => {
    mcpMode = 'open';
    binding = { delayMs: 300, fail: false };
    const r = await initialize(100);
    assert.equal(r.status, 'gone');
    await within(mcpClosed, 5000, "the upstream's answer closing");
    await new Promise((resolve) => setTimeout(resolve, 400)); // the binding completes after the caller left
    await stillServes();
  });

  it('an upstream that fails while the session is being bound: a 502, and the hub keeps serving', async () => {
    mcpMode = 'reset';
    binding = { delayMs: 300, fail: false };
    const r = await within(initialize(), 5000, 'the answer');
    assert.equal(r.status, 502, r.body);
    assert.equal(JSON.parse(r.body).error, 'bad_gateway');
    await stillServes();
  });

  it('a session binding that fails: the caller gets the error, and the upstream answer is closed, not left paused', async () => {
    mcpMode = 'open';
    binding = { delayMs: 0, fail: true };
    const r = await within(initialize(), 5000, 'the answer');
    assert.equal(r.status, 500, r.body);
    await within(mcpOpened, 5000, 'the upstream answering');
    await within(mcpClosed, 5000, "the upstream's answer closing");
    binding = { delayMs: 0, fail: false };
    await stillServes();
  });

  it('a tools/list answer the upstream cuts off while the hub reads it to filter: a 502', async () => {
    const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    const r = await within(postMcp(list, { headers: { 'mcp-protocol-version': '2025-11-25' } }), 5000, 'the answer');
    assert.equal(r.status, 502, r.body);
    assert.equal(JSON.parse(r.body).error, 'bad_gateway');
  });

  it('pipelined requests on one connection are all answered, in order (fast path and route)', async () => {
    const { port } = new URL(t.url);
    for (const [method, extra] of [['GET', ''], ['POST', 'content-type: text/plain\r\ncontent-length: 2\r\n']] as const) {
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => { received += d; });
      const one = (path: string) => `${method} /api/nodes/${path} HTTP/1.1\r\nx-api-key: ${key}\r\nhost: hub\r\n${extra}\r\n${extra ? 'hi' : ''}`;
      socket.write(one('a') + one('b') + one('c'));
      await within((async () => { while ((received.match(/HTTP\/1\.1 200/g) ?? []).length < 3) await new Promise((resolve) => setTimeout(resolve, 20)); })(), 5000, `three answers to three pipelined ${method}s`);
      socket.destroy();
    }
  });

  it("an upstream that answers before the caller's upload is done: the answer arrives, and the connection serves the next request", async () => {
    const { port } = new URL(t.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { received += d; });
    const head = `x-api-key: ${key}\r\nhost: hub\r\n`;
    socket.write(`POST /api/nodes/early HTTP/1.1\r\n${head}content-type: application/octet-stream\r\ncontent-length: 200000\r\n\r\n`);
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.write(Buffer.alloc(50_000, 97));
    }
    await within((async () => { while (!received.includes('too large')) await new Promise((resolve) => setTimeout(resolve, 20)); })(), 5000, 'the early answer');
    assert.match(received, /^HTTP\/1\.1 413 /);
    socket.write(`GET /api/nodes/next HTTP/1.1\r\n${head}\r\n`);
    await within((async () => { while (!/\r\n\r\nok$/.test(received)) await new Promise((resolve) => setTimeout(resolve, 20)); })(), 5000, 'the next answer on the same connection');
    assert.deepEqual(received.match(/HTTP\/1\.1 \d{3}/g), ['HTTP/1.1 413', 'HTTP/1.1 200']);
    socket.destroy();
  });
});

describe('relay: an upload to an upstream that cannot be reached', () => {
  it('is a 502, and the connection serves the next request (the upload is read and dropped)', async () => {
    const t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${await freePort()}` } });
    try {
      const // These tests are about relaying: the key may reach any upstream path (upstream:access, which * holds).
    key = (await t.hub.apiKeys.create({ name: 'relay', roles: ['admin'] })).key;
      const { port } = new URL(t.url);
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => { received += d; });
      socket.on('error', () => undefined);
      const head = `x-api-key: ${key}\r\nhost: hub\r\n`;
      // More than the socket and stream buffers between caller and hub hold.
      const size = 4 * 1024 * 1024;
      socket.write(`POST /api/nodes/upload HTTP/1.1\r\n${head}content-type: application/octet-stream\r\ncontent-length: ${size}\r\n\r\n`);
      socket.write(Buffer.alloc(size, 97));
      socket.write(`GET /api/nodes/next HTTP/1.1\r\n${head}\r\n`);
      await within((async () => { while ((received.match(/HTTP\/1\.1 502/g) ?? []).length < 2) await new Promise((resolve) => setTimeout(resolve, 20)); })(), 10_000, 'two 502 answers on one connection');
      socket.destroy();
    } finally {
      await t.close();
    }
  });
});
