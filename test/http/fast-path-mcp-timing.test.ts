/**
 * The MCP fast path (src/http/fast-path.ts `mcp`, src/proxy/routes.ts `relayMcp`) while a body is
 * still arriving: found by an attacker's review of it. The authentication is recorded when the
 * message is taken, as the route records it before reading the body (a caller that leaves
 * mid-body is still counted and audited; the latency recorded is not the upload's), and a message
 * left to the route after the server began closing gets the hub's own 503. Each `it` compares the
 * fast server with a server over the same hub whose fast path is off.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { buildServer, fastPathAnswered } from '../../src/http/server.ts';
import { freePort, serviceAccountToken, type TestHub } from '../helpers/hub.ts';
import { call, init, mcpUpstream, post, revokedMidBody, servedTwice, sleep, startPost, warmSession } from '../helpers/mcp-under-way.ts';

describe('MCP messages on the fast path while their body arrives', () => {
  let t: TestHub;
  let slowPort: number;
  let fastPort: number;
  let dev: Record<string, string>;
  let close: () => Promise<void>;
  before(async () => {
    ({ t, slowPort, fastPort, close } = await servedTwice(await mcpUpstream(300)));
    const token = (await serviceAccountToken(t, ['developer'])).token;
    const res = await post(`${t.url}/mcp`, { authorization: `Bearer ${token}` }, init);
    dev = { authorization: `Bearer ${token}`, 'mcp-session-id': String(res.headers['mcp-session-id']) };
    // Fill the caches (session binding, upstream token) so the next message takes the fast path.
    const before = fastPathAnswered(t.app)!;
    await post(`${t.url}/mcp`, dev, call('memory_node'));
    await post(`${t.url}/mcp`, dev, call('memory_node'));
    assert.ok(fastPathAnswered(t.app)! > before, 'the fast path is in use');
  });
  after(() => close());

  /** Every authentication the hub records (metrics counter + latency histogram) and every "service account used" audit event. */
  function watch() {
    const seen: { authenticated: number[]; used: number } = { authenticated: [], used: 0 };
    const original = t.hub.metrics.authenticated.bind(t.hub.metrics);
    t.hub.metrics.authenticated = (method, ok, seconds) => { seen.authenticated.push(seconds); original(method, ok, seconds); };
    t.hub.audit.observe((e) => { if (e.type === 'service_account_used') seen.used++; });
    return { seen, stop: () => { t.hub.metrics.authenticated = original; } };
  }

  it('a caller that goes away mid-body is recorded as authenticated (metrics, audit "service_account_used") as the route records it', async () => {
    const w = watch();
    const body = call('memory_node');
    try {
      const counts: Record<string, { authenticated: number; used: number }> = {};
      for (const [name, port] of [['route', slowPort], ['fast', fastPort]] as const) {
        const a = w.seen.authenticated.length;
        const u = w.seen.used;
        const p = startPost(port, dev, body, 10);
        await sleep(100);
        p.socket.destroy();
        await sleep(100);
        counts[name] = { authenticated: w.seen.authenticated.length - a, used: w.seen.used - u };
      }
      assert.equal(counts.route!.authenticated, 1, 'the route records the authentication before it reads the body');
      assert.deepEqual(counts.fast, counts.route, 'the fast path records nothing for a message whose body never came');
    } finally { w.stop(); }
  });

  it('the authentication latency recorded does not include the time the caller takes to upload the body', async () => {
    const w = watch();
    const body = call('memory_node');
    try {
      const took: Record<string, number> = {};
      for (const [name, port] of [['route', slowPort], ['fast', fastPort]] as const) {
        const a = w.seen.authenticated.length;
        const p = startPost(port, dev, body, 10);
        await sleep(400);
        p.rest();
        await sleep(150);
        assert.match(p.answer(), /^HTTP\/1\.1 200 /, `${name} answers`);
        p.socket.destroy();
        took[name] = w.seen.authenticated.slice(a).reduce((x, y) => Math.max(x, y), 0);
      }
      assert.ok(took.route! < 0.2, `route: ${took.route}`);
      assert.ok(took.fast! < 0.2, `fast path records ${took.fast} s of "authentication" (the body's upload time)`);
    } finally { w.stop(); }
  });

  it('a message taken before the server starts closing, left to the route once its body came, gets the hub\'s 503 (Fastify no longer routes)', async () => {
    const answers: Record<string, string> = {};
    for (const fastPath of [false, true]) {
      const app = await buildServer(t.hub, { fastPath });
      const port = await freePort();
      await app.listen({ port, host: '127.0.0.1' });
      const body = JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }); // left to the route (filtered there)
      // Warm: this server's fast path relays a tools/call of this session.
      await post(`http://127.0.0.1:${port}/mcp`, dev, call('memory_node'));
      const p = startPost(port, dev, body, 5);
      await sleep(100);
      const closed = app.close();
      await sleep(50);
      p.rest();
      await sleep(300);
      answers[fastPath ? 'fast' : 'route'] = p.answer();
      p.socket.destroy();
      await closed;
    }
    assert.match(answers.route!, /^HTTP\/1\.1 200 /, 'the route, already under way, answers');
    const fast = answers.fast!;
    assert.match(fast, /^HTTP\/1\.1 503 /);
    assert.match(fast, /\r\nx-request-id: [0-9a-f-]{36}\r\n/i, 'rendered by the hub, not Fastify\'s bare 503');
    assert.match(fast, /\r\nretry-after: 1\r\n/i);
    assert.match(fast, /"error":"service_unavailable"/);
  });

  it('a credential revoked while the MCP body arrives is refused (401 invalid_token) by both servers', async () => {
    const answers: Record<string, string> = {};
    for (const [name, port] of [['route', slowPort], ['fast', fastPort]] as const) {
      const { token, headers: mine } = await warmSession(t, port);
      const p = await revokedMidBody(t, port, token, mine);
      answers[name] = p.answer();
      p.socket.destroy();
    }
    for (const [name, answer] of Object.entries(answers)) {
      assert.match(answer, /^HTTP\/1\.1 401 /, `${name}: ${answer.split('\r\n')[0]}`);
      assert.match(answer, /www-authenticate: Bearer [^\r]*error="invalid_token"/i);
    }
  });

  it('an event stream whose credential was revoked while the upstream was still answering is cut off when it opens', async () => {
    for (const port of [slowPort, fastPort]) {
      const { token } = await serviceAccountToken(t, ['developer']);
      const headers = { host: 'mimir.example.test', authorization: `Bearer ${token}` };
      // Warm the caches so the fast server takes the read itself.
      await new Promise<void>((resolve, reject) => {
        request(`http://127.0.0.1:${port}/api/nodes/vector-search`, { headers }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject).end();
      });
      const outcome = new Promise<string>((resolve) => {
        const req = request(`http://127.0.0.1:${port}/api/nodes/types`, { headers }, (res) => {
          let beats = 0;
          res.on('data', () => { beats++; });
          res.on('close', () => resolve(`closed after ${beats} chunk(s)`));
        });
        req.on('error', () => resolve('closed before its headers'));
        req.end();
        setTimeout(() => { resolve('still open'); req.destroy(); }, 1500);
      });
      await sleep(100);
      const { jti, exp } = decodeJwt(token);
      await t.hub.revocations.revoke('jti', String(jti), Number(exp));
      const got = await outcome;
      assert.match(got, /^closed (after 0 chunk|before)/, `port ${port}: ${got}`);
    }
  });
});
