/**
 * A revocation lost while this hub was cut off from its store's pub/sub (found by an attacker's
 * review of a6e73f9, where it failed): the resync replays only the revocation list (jti, sid, kid),
 * not API keys, ended sessions or disabled service accounts, so after a loss or a resync every
 * request authenticated before it is taken as revoked (OpenStreams.forgetBefore). Here: a request
 * authenticated before the gap whose event stream opens after it, with an API key revoked during
 * it, is cut off.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { newRedisPrefix, REDIS_URL, startHub, type TestHub } from '../helpers/hub.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('a revocation lost in a gap of the revocation channel, for a request under way (from an attacker\'s review)', () => {
  let a: TestHub;
  let b: TestHub;
  let pa: TcpProxy;
  let pb: TcpProxy;
  let upstream: Server;
  before(async () => {
    // An event stream that opens 8 s after it was asked for (a slow upstream), then beats every 50 ms.
    upstream = createServer((req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const beat = setInterval(() => res.write('data: beat\n\n'), 50);
        res.on('close', () => clearInterval(beat));
      }, req.url === '/api/nodes/types' ? 8000 : 0);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = new URL(REDIS_URL);
    pa = await startTcpProxy(Number(target.port || 6379), target.hostname);
    pb = await startTcpProxy(Number(target.port || 6379), target.hostname);
    const via = (p: TcpProxy) => { const u = new URL(target); u.port = String(p.port); return u.toString(); };
    const shared = {
      MIMIR_JWT_SECRET: randomBytes(32).toString('base64url'), MIMIR_JWT_ISSUER: 'http://mimir-hub.test',
      MIMIR_REVOCATION_MAX_STALENESS: '2', MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    };
    const prefix = newRedisPrefix();
    a = await startHub({ storage: 'redis', redisPrefix: prefix, env: { ...shared, MIMIR_REDIS_URL: via(pa) } });
    b = await startHub({ storage: 'redis', redisPrefix: prefix, env: { ...shared, MIMIR_REDIS_URL: via(pb) } });
  });
  after(async () => {
    await pb?.pass();
    await sleep(1500);
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all([pa?.close(), pb?.close(), new Promise((r) => { upstream.close(r); upstream.closeAllConnections(); })]);
  });

  it('an event stream opened after the gap for an API key revoked during it is cut off', { timeout: 30_000 }, async () => {
    const { key, record } = await a.hub.apiKeys.create({ name: 'ci', roles: ['developer'] });
    const status = async (path: string) => new Promise<number>((resolve, reject) => {
      request(`${b.url}${path}`, { headers: { 'x-api-key': key } }, (res) => { resolve(res.statusCode!); res.destroy(); }).on('error', reject).end();
    });
    assert.equal(await status('/api/nodes/vector-search'), 200, 'B accepts the key');
    let beats = 0;
    let closed = false;
    const req = request(`${b.url}/api/nodes/types`, { headers: { 'x-api-key': key } }, (res) => {
      res.on('data', () => { beats++; });
      res.on('close', () => { closed = true; });
    });
    req.on('error', () => { closed = true; });
    req.end();
    const start = performance.now();
    await sleep(200); // authenticated and waiting for the upstream
    await pb.cut();
    await a.hub.apiKeys.revoke(record.id); // B never hears this message
    await sleep(3500);
    await pb.pass();
    // B resyncs once it has contact again: a new request with the key is refused.
    let refused = 0;
    for (let i = 0; i < 40 && refused !== 401; i++) { await sleep(100); refused = await status('/api/nodes/vector-search'); }
    assert.equal(refused, 401, 'B refuses the revoked key after healing');
    await sleep(9000 - (performance.now() - start)); // the upstream answered (8 s)
    assert.ok(beats > 0 || closed, 'the stream opened');
    const seen = beats;
    await sleep(300);
    req.destroy();
    assert.equal(beats - seen, 0, `B relays the stream of a key revoked while it was cut off: ${beats} chunks, still flowing`);
  });
});
