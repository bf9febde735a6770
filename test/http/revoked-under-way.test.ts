/**
 * Credentials revoked while a request is under way, found by an attacker's review of a6e73f9 (each
 * `it` failed there): a signing key revoked (kid) refuses an MCP body under way and ends the open
 * event streams of hub JWTs; a credential revoked while an MCP body arrives is recorded alike by
 * the fast path and the route (one authentication, audited `credential_revoked` with its principal).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { fastPathAnswered } from '../../src/http/server.ts';
import { serviceAccountToken, type TestHub } from '../helpers/hub.ts';
import { call, mcpUpstream, post, revokedMidBody, servedTwice, sleep, startPost, warmSession } from '../helpers/mcp-under-way.ts';

describe('revocations heard while a request is under way (from an attacker\'s review)', () => {
  let t: TestHub;
  let slowPort: number;
  let fastPort: number;
  let close: () => Promise<void>;
  before(async () => {
    ({ t, slowPort, fastPort, close } = await servedTwice(await mcpUpstream()));
  });
  after(() => close());

  const session = (port: number) => warmSession(t, port);

  it('a revoked credential refused mid-body is recorded once and audited "credential_revoked" with its principal, on the fast path as on the route', async () => {
    const seen: Array<{ ok: boolean }> = [];
    const events: Array<{ reason?: unknown; principal?: unknown }> = [];
    const original = t.hub.metrics.authenticated.bind(t.hub.metrics);
    t.hub.metrics.authenticated = (method, ok, seconds) => { seen.push({ ok }); original(method, ok, seconds); };
    t.hub.audit.observe((e) => { if (e.type === 'authentication_failed') events.push(e as never); });
    const got: Record<string, { authenticated: boolean[]; reasons: unknown[]; withPrincipal: boolean[]; status: string }> = {};
    try {
      for (const [name, port] of [['route', slowPort], ['fast', fastPort]] as const) {
        const { token, headers } = await session(port);
        const before = fastPathAnswered(t.app)!;
        const s = seen.length; const e = events.length;
        const p = await revokedMidBody(t, port, token, headers);
        p.socket.destroy();
        if (name === 'fast') assert.ok(fastPathAnswered(t.app)! >= before, 'taken by the fast path');
        got[name] = {
          authenticated: seen.slice(s).map((x) => x.ok),
          reasons: events.slice(e).map((x) => x.reason),
          withPrincipal: events.slice(e).map((x) => x.principal !== undefined),
          status: p.answer().split('\r\n')[0]!,
        };
      }
    } finally { t.hub.metrics.authenticated = original; }
    assert.deepEqual(got.route, { authenticated: [true], reasons: ['credential_revoked'], withPrincipal: [true], status: 'HTTP/1.1 401 Unauthorized' });
    assert.deepEqual(got.fast, got.route, 'the fast path counts the request twice (success, then failure) and audits reason "invalid_token" without the principal');
  });

  it('an MCP body under way when its signing key is revoked (kid) is refused, as a jti revocation is', async () => {
    const answers: Record<string, string> = {};
    for (const [name, port] of [['route', slowPort], ['fast', fastPort]] as const) {
      const { token, headers } = await session(port);
      const p = startPost(port, headers, call('memory_node'), 10);
      await sleep(100);
      const { kid } = decodeProtectedHeader(token);
      await t.hub.keys.rotate(); // new tokens are signed by another key; this one's key is then revoked
      await t.hub.revocations.revoke('kid', String(kid), Math.floor(Date.now() / 1000) + 3600);
      // The key revocation is heard: a new request with the token is refused.
      assert.equal((await post(`http://127.0.0.1:${port}/mcp`, headers, call('memory_node'))).status, 401);
      p.rest();
      await sleep(300);
      answers[name] = p.answer().split('\r\n')[0]!;
      p.socket.destroy();
    }
    assert.deepEqual(answers, { route: 'HTTP/1.1 401 Unauthorized', fast: 'HTTP/1.1 401 Unauthorized' });
  });

  it('an open event stream ends when the key that signed its token is revoked (kid)', async () => {
    for (const port of [slowPort, fastPort]) {
      const { token } = await serviceAccountToken(t, ['developer']);
      const headers = { host: 'mimir.example.test', authorization: `Bearer ${token}` };
      let beats = 0;
      let closed = false;
      const req = request(`http://127.0.0.1:${port}/api/nodes/types`, { headers }, (res) => {
        res.on('data', () => { beats++; });
        res.on('close', () => { closed = true; });
      });
      req.on('error', () => { closed = true; });
      req.end();
      await sleep(200);
      assert.ok(beats > 0 && !closed, 'the stream is open');
      const { kid } = decodeProtectedHeader(token);
      await t.hub.keys.rotate();
      await t.hub.revocations.revoke('kid', String(kid), Math.floor(Date.now() / 1000) + 3600);
      await sleep(300);
      const after = beats;
      await sleep(300);
      req.destroy();
      assert.ok(closed || beats === after, `port ${port}: still streaming (${beats - after} chunks after the key was revoked)`);
    }
  });
});
