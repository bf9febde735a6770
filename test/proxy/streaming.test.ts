import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { freePort, startHub } from '../helpers/hub.ts';
import { frontWithKey, type Front } from './setup.ts';
import { within } from '../helpers/time.ts';

describe('streaming through the proxy', () => {
  let f: Front;
  let key: string;
  before(async () => { ({ f, key } = await frontWithKey(['developer'])); });
  after(async () => { await f.close(); });

  it('an SSE stream of several events arrives event by event, never buffered whole', async () => {
    const res = await fetch(`${f.t.url}/api/nodes/events`, { headers: { 'x-api-key': key, accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    await f.upstream.sse.opened;
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    for (const n of [1, 2, 3]) {
      // The upstream sends event n only now; it must arrive before event n+1 even exists.
      f.upstream.sse.release();
      while (!text.includes(`"n":${n}`)) {
        const { value, done } = await within(reader.read(), 10_000, `event ${n}`);
        assert.equal(done, false, `the stream ended before event ${n}`);
        text += value;
      }
      assert.ok(!text.includes(`"n":${n + 1}`));
    }
    const end = await within(reader.read(), 10_000, 'end of stream');
    assert.equal(end.done, true);
    assert.equal(text.match(/^data: /gm)?.length, 3);
  });

  it('a client that disconnects cancels the upstream request', async () => {
    // node:http without an agent, so going away closes exactly this connection.
    const { hostname, port } = new URL(f.t.url);
    const req = request({ hostname, port, path: '/api/nodes/hang', agent: false, headers: { 'x-api-key': key } });
    const status = await new Promise<number>((resolve, reject) => { req.on('response', (res) => resolve(res.statusCode!)); req.on('error', reject); req.end(); });
    assert.equal(status, 200);
    await within(f.upstream.hangOpened, 10_000, 'upstream request');
    req.destroy();
    await within(f.upstream.hangClosed, 10_000, 'upstream cancellation');
  });
});

describe('an upstream that is down', () => {
  it('answers 502 with a JSON error, and the hub keeps serving', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: dead } });
    try {
      const { key } = await t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] });
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${t.url}/api/nodes/1`, { headers: { 'x-api-key': key } });
        assert.equal(res.status, 502);
        assert.match(res.headers.get('content-type')!, /application\/json/);
        const body = await res.json() as { error: string; error_description: string };
        assert.equal(body.error, 'bad_gateway');
        assert.ok(!body.error_description.includes(dead), 'the upstream address is not disclosed');
      }
      assert.equal((await fetch(`${t.url}/health`)).status, 200);
      assert.equal((await fetch(`${t.url}/auth/me`, { headers: { 'x-api-key': key } })).status, 200);
    } finally {
      await t.close();
    }
  });
});
