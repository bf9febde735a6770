/**
 * Issue 15, finding 9: fetching a client ID metadata document. A server that sends its headers
 * and then one byte a second held /auth/authorize open for as long as it liked (the socket idle
 * timeout restarts with every byte), and a URL that failed was fetched again on every request.
 * Now one deadline (MIMIR_CIMD_FETCH_TIMEOUT) bounds the whole fetch, body included, and a
 * failure is remembered for a minute.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ConfigError, loadConfig } from '../../../src/config/index.ts';
import { startHub, type TestHub } from '../../helpers/hub.ts';

const DEADLINE_SECONDS = 2;
/** A correctness bound, not a speed goal: the deadline plus a generous margin. */
const BOUND_MS = (DEADLINE_SECONDS + 3) * 1000;

describe('client ID metadata document fetching is bounded and failures are remembered (issue 15, finding 9)', () => {
  let t: TestHub;
  let docs: Server;
  let base: string;
  let offset = 0;
  const hits = new Map<string, number>();
  const sockets = new Set<Socket>();

  before(async () => {
    docs = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      if (path.startsWith('/slow/')) {
        // Headers at once, then a byte a second for 20 s: never idle for long, never done in time.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{');
        let sent = 0;
        const timer = setInterval(() => {
          if (++sent >= 20 || res.destroyed) { clearInterval(timer); res.end('}'); return; }
          res.write(' ');
        }, 1000);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.writeHead(500, { 'content-type': 'text/plain' }).end('down');
    });
    docs.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    await new Promise<void>((resolve) => docs.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;
    t = await startHub({
      storage: 'memory', now: () => Date.now() + offset,
      env: { MIMIR_DEVELOPMENT_MODE: 'true', MIMIR_CIMD_FETCH_TIMEOUT: String(DEADLINE_SECONDS) },
    });
  });
  after(async () => {
    await t?.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => docs?.close(resolve));
  });

  const authorize = (clientId: string) => fetch(`${t.url}/auth/authorize?${new URLSearchParams({
    client_id: clientId, redirect_uri: 'http://127.0.0.1:4000/cb', response_type: 'code',
    code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
  })}`, { redirect: 'manual' });

  it('MIMIR_CIMD_FETCH_TIMEOUT: whole seconds from 1 to 60, default 5', () => {
    assert.equal(loadConfig({}, { dotenv: false }).authorizationServer.cimdFetchTimeout, 5);
    assert.equal(loadConfig({ MIMIR_CIMD_FETCH_TIMEOUT: '12' }, { dotenv: false }).authorizationServer.cimdFetchTimeout, 12);
    for (const bad of ['0', '61', '1.5', 'soon']) {
      assert.throws(() => loadConfig({ MIMIR_CIMD_FETCH_TIMEOUT: bad }, { dotenv: false }),
        (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('MIMIR_CIMD_FETCH_TIMEOUT:')), bad);
    }
  });

  it('a document dripped a byte a second: /auth/authorize answers an error page within the deadline (+ margin)', async () => {
    const clientId = `${base}/slow/client.json`;
    const started = performance.now();
    // Two at once: they share one fetch.
    const [a, b] = await Promise.all([authorize(clientId), authorize(clientId)]);
    const elapsed = performance.now() - started;
    for (const res of [a, b]) {
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('location'), null);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(await res.text(), /metadata document/);
    }
    assert.ok(elapsed < BOUND_MS, `answered after ${Math.round(elapsed)} ms; the deadline is ${DEADLINE_SECONDS} s`);
    assert.equal(hits.get('/slow/client.json'), 1, 'concurrent requests share one fetch');
  });

  it('a URL that fails is fetched once for two authorization requests within a minute, again after', async () => {
    const clientId = `${base}/failing/client.json`;
    for (let i = 0; i < 2; i++) {
      const res = await authorize(clientId);
      assert.equal(res.status, 400);
      assert.match(await res.text(), /answered 500/);
    }
    assert.equal(hits.get('/failing/client.json'), 1, 'the failure was remembered');
    offset += 61_000;
    assert.equal((await authorize(clientId)).status, 400);
    assert.equal(hits.get('/failing/client.json'), 2, 'remembered only briefly');
  });
});
