/**
 * Issue 7 regression: the proxy relays response bodies with pipe() instead of stream.pipeline
 * (which cost an AbortError per request). These hold the failure behaviour pipeline gave.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { callUpstream, upstreamTarget } from '../../src/proxy/forward.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { within } from '../helpers/time.ts';

/** GET through the hub with node:http; resolves with what arrived and how the body ended. */
function get(hub: TestHub, path: string, key: string, method = 'GET', send?: { body?: string; headers?: Record<string, string> }): Promise<{ status: number; body: string; ended: 'complete' | 'cut off'; raw: string[] }> {
  const { hostname, port } = new URL(hub.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, agent: false, headers: { 'x-api-key': key, ...send?.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, ended: res.complete ? 'complete' : 'cut off', raw: res.rawHeaders }));
      res.on('error', () => resolve({ status: res.statusCode!, body, ended: 'cut off', raw: res.rawHeaders }));
    });
    req.on('error', reject);
    if (send?.body !== undefined && send.headers?.['transfer-encoding'] === 'chunked') { req.write(send.body); req.end(); } else req.end(send?.body);
  });
}

/** The size of /api/nodes/big: more than the sockets between the three parties buffer. */
const BIG = 32 * 1024 * 1024;
let bigClosed: Promise<number> = Promise.resolve(0);
/** Bytes of /api/nodes/big written so far by the upstream. */
let bigSent = 0;

/** The bytes /api/nodes/big sends: chunk i (64 KiB) is all i % 256. */
function bigDigest(): string {
  const h = createHash('sha256');
  for (let sent = 0; sent < BIG; sent += 65_536) h.update(Buffer.alloc(Math.min(65_536, BIG - sent), sent / 65_536));
  return h.digest('hex');
}

describe('proxy relay failures (issue 7: pipe instead of pipeline)', () => {
  let upstream: Server;
  let t: TestHub;
  let key: string;
  before(async () => {
    upstream = createServer((req, res) => {
      if (req.url === '/api/nodes/framing') {
        // Says how the request's body was framed and what arrived.
        let length = 0;
        req.on('data', (c: Buffer) => { length += c.length; });
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ contentLength: req.headers['content-length'] ?? null, transferEncoding: req.headers['transfer-encoding'] ?? null, length, host: req.headers.host }));
        });
        return;
      }
      if (req.url === '/api/nodes/own-headers') {
        // Names a field the hub also sets, twice over, plus a hop-by-hop one.
        res.writeHead(200, ['referrer-policy', 'same-origin', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'keep-alive', 'timeout=5', 'content-length', '2']);
        res.end('ok');
      } else if (req.url === '/api/nodes/odd-status') {
        // A status node:http parses but will not write (writeHead throws below 100).
        req.socket.end('HTTP/1.1 099 Odd\r\ncontent-length: 2\r\n\r\nok');
      } else if (req.url === '/api/nodes/early-hints') {
        // An informational answer first (RFC 8297), then the final one.
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
        res.end('{"ok":true}');
      } else if (req.url === '/api/nodes/big') {
        // BIG bytes in 64 KiB chunks, written as fast as the connection takes them.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
        let sent = 0;
        bigSent = 0;
        const more = () => {
          while (sent < BIG) {
            const chunk = Buffer.alloc(Math.min(65_536, BIG - sent), sent / 65_536);
            sent += chunk.length;
            bigSent = sent;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        bigClosed = new Promise((resolve) => res.once('close', () => resolve(sent)));
        more();
      } else if (req.url === '/api/nodes/whole') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
        res.end('{"ok":true}');
      } else if (req.url === '/api/nodes/short') {
        // Promises 100 bytes, sends 10, then the connection dies.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 });
        res.write('{"partial"');
        setTimeout(() => res.socket?.destroy(), 50);
      } else {
        // Chunked, then the connection dies mid-body.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first chunk;');
        setTimeout(() => res.socket?.destroy(), 50);
      }
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } });
    // These tests are about relaying: the key may reach any upstream path (upstream:access, which * holds).
    key = (await t.hub.apiKeys.create({ name: 'relay', roles: ['admin'] })).key;
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  it('frames the body sent upstream by what is known of it: its length, chunks while it arrives, or nothing (none for GET)', async () => {
    const framing = async (method: string, send?: { body?: string; headers?: Record<string, string> }) => {
      const r = await within(get(t, '/api/nodes/framing', key, method, send), 5000, `${method}'s answer`);
      assert.equal(r.status, 200, r.body);
      return JSON.parse(r.body) as { contentLength: string | null; transferEncoding: string | null; length: number; host: string };
    };
    const { host } = new URL(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    assert.deepEqual(await framing('POST', { body: '{"a":1}', headers: { 'content-type': 'application/json' } }), { contentLength: '7', transferEncoding: null, length: 7, host });
    // A chunked body that has all arrived may go on with its length (framing is hop-by-hop, RFC 9112 §7)…
    const whole = await framing('POST', { body: '{"a":1}', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
    assert.ok(whole.contentLength === '7' ? whole.transferEncoding === null : whole.transferEncoding === 'chunked' && whole.contentLength === null, JSON.stringify(whole));
    assert.deepEqual({ length: whole.length, host: whole.host }, { length: 7, host });
    // …one still arriving goes on chunked, as it arrives.
    const { hostname, port } = new URL(t.url);
    const streamed = await within(new Promise<string>((resolve, reject) => {
      const req = request({ hostname, port, path: '/api/nodes/framing', method: 'POST', agent: false, headers: { 'x-api-key': key, 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { b += c; });
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.write('first;');
      setTimeout(() => req.end('second'), 100);
    }), 5000, 'the streamed answer');
    assert.deepEqual(JSON.parse(streamed), { contentLength: null, transferEncoding: 'chunked', length: 12, host });
    // No Content-Length and no Transfer-Encoding: an empty body (RFC 9112 §6.3), sent as one.
    assert.deepEqual(await framing('POST'), { contentLength: '0', transferEncoding: null, length: 0, host });
    // A GET's body does not go upstream, and neither does its length (on both paths).
    assert.deepEqual(await framing('GET', { body: 'hello', headers: { 'content-length': '5' } }), { contentLength: null, transferEncoding: null, length: 0, host });
    assert.deepEqual(await framing('GET'), { contentLength: null, transferEncoding: null, length: 0, host });
  });

  it('a body read in full (MCP) goes upstream with its own length, not the chunks or length the caller used', async () => {
    const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    for (const caller of [[], ['content-length', '999']]) {
      const answer = await within(new Promise<string>((resolve, reject) => {
        callUpstream({
          target: upstreamTarget(base, '/api/nodes/framing'), method: 'POST', headers: ['content-type', 'application/json', ...caller], body: Buffer.from('{"a":1}'),
          onResponse: () => {
            let b = '';
            return new Writable({ write: (c: Buffer, _e, done) => { b += c.toString(); done(); }, final: (done) => { resolve(b); done(); } });
          },
          onError: reject,
        });
      }), 5000, 'the upstream answer');
      assert.deepEqual(JSON.parse(answer), { contentLength: '7', transferEncoding: null, length: 7, host: new URL(base).host });
    }
  });

  it("the upstream's headers follow the hub's own; a field both set is sent once, with the upstream's value", async () => {
    for (const method of ['GET', 'POST']) {
      const r = await get(t, '/api/nodes/own-headers', key, method);
      assert.equal(r.status, 200, method);
      const fields = (name: string) => r.raw.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [r.raw[i + 1]] : []));
      assert.deepEqual(fields('referrer-policy'), ['same-origin'], method);
      assert.deepEqual(fields('set-cookie'), ['a=1', 'b=2'], method);
      assert.deepEqual(fields('x-content-type-options'), ['nosniff'], method);
      assert.equal(fields('x-request-id').length, 1, method);
      assert.ok(!fields('keep-alive').includes('timeout=5'), method); // hop-by-hop: the upstream's connection, not the caller's
      assert.equal(r.raw[0]!.toLowerCase(), 'x-request-id', method);
    }
  });

  it('an upstream answer node:http cannot write is a 502, on the fast path (GET) and through the route (POST), and the hub keeps serving', async () => {
    for (const method of ['GET', 'POST']) {
      const r = await within(get(t, '/api/nodes/odd-status', key, method), 5000, `${method}'s answer`);
      assert.equal(r.status, 502, method);
      assert.equal(JSON.parse(r.body).error, 'bad_gateway', method);
      assert.equal(r.ended, 'complete');
    }
    assert.equal((await get(t, '/api/nodes/whole', key)).status, 200);
  });

  it('a whole body arrives whole, with its length, many times over one hub', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await within(get(t, '/api/nodes/whole', key), 10_000, 'response');
      assert.deepEqual({ ...r, raw: undefined }, { status: 200, body: '{"ok":true}', ended: 'complete', raw: undefined });
    }
  });

  it('an informational answer (103 Early Hints) is passed over: the caller gets the final answer', async () => {
    for (const method of ['GET', 'POST']) {
      const r = await within(get(t, '/api/nodes/early-hints', key, method), 5000, `${method}'s answer`);
      assert.deepEqual({ status: r.status, body: r.body, ended: r.ended }, { status: 200, body: '{"ok":true}', ended: 'complete' }, method);
    }
  });

  it('a body larger than every buffer reaches a slow reader whole, at the pace it reads (GET and POST)', async () => {
    const { hostname, port } = new URL(t.url);
    for (const method of ['GET', 'POST']) {
      let sentWhilePaused = 0;
      const got = await within(new Promise<{ length: number; digest: string; status: number }>((resolve, reject) => {
        const req = request({ hostname, port, path: '/api/nodes/big', method, agent: false, headers: { 'x-api-key': key } }, (res) => {
          const h = createHash('sha256');
          let length = 0;
          let paused = false;
          res.on('data', (c: Buffer) => {
            h.update(c);
            length += c.length;
            // Stop reading for a while once: the hub must hold the upstream back, not buffer it all.
            if (!paused && length > 1024 * 1024) { paused = true; res.pause(); setTimeout(() => { sentWhilePaused = bigSent; res.resume(); }, 500); }
          });
          res.on('end', () => resolve({ length, digest: h.digest('hex'), status: res.statusCode! }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }), 60_000, `${method}'s big answer`);
      assert.deepEqual(got, { length: BIG, digest: bigDigest(), status: 200 }, method);
      // Socket buffers hold some megabytes (~12 MB here); without backpressure the upstream sends it all.
      assert.ok(sentWhilePaused < BIG, `${method}: the upstream sent all ${sentWhilePaused} bytes while the caller read nothing`);
    }
  });

  it('a caller that goes away mid-way through a large body stops the upstream, and the hub keeps serving', async () => {
    const { hostname, port } = new URL(t.url);
    const req = request({ hostname, port, path: '/api/nodes/big', agent: false, headers: { 'x-api-key': key } }, (res) => {
      res.once('data', () => { res.pause(); setTimeout(() => req.destroy(), 100); });
    });
    req.on('error', () => undefined);
    req.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const sent = await within(bigClosed, 10_000, 'the upstream response closing');
    assert.ok(sent < BIG, `the upstream wrote all ${sent} bytes for a caller that had gone`);
    assert.equal((await within(get(t, '/api/nodes/whole', key), 10_000, 'response after a caller left')).status, 200);
  });

  it('an upstream that dies before the promised length cuts the response off instead of hanging', async () => {
    const r = await within(get(t, '/api/nodes/short', key), 10_000, 'cut-off response');
    assert.equal(r.status, 200);
    assert.equal(r.ended, 'cut off');
    assert.equal(r.body, '{"partial"');
  });

  it('an upstream that dies mid-way through a chunked body cuts the response off, and the hub keeps serving', async () => {
    const r = await within(get(t, '/api/nodes/chunked', key), 10_000, 'cut-off response');
    assert.equal(r.ended, 'cut off');
    assert.equal(r.body, 'first chunk;');
    const again = await within(get(t, '/api/nodes/whole', key), 10_000, 'response after a failure');
    assert.equal(again.ended, 'complete');
  });
});
