/**
 * /mcp reads a POST's body to authorize the message it carries (src/proxy/routes.ts readBody): a
 * body over its limit (4 MiB) is refused, never forwarded, the connection closed with the refusal
 * (the rest of the body is never read: a paused socket held open would be anyone's to hold), and
 * the hub goes on serving.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { frontWithKey, type Front } from './setup.ts';

const ACCEPT = 'application/json, text/event-stream';
const LIMIT = 4 * 1024 * 1024;

/** Sends `size` bytes of a JSON-RPC message in chunks; the status and body the hub answered, or the error. */
function post(url: string, key: string, size: number, chunked: boolean): Promise<{ status?: number; body?: string; error?: string; connection?: string | undefined }> {
  return new Promise((resolve) => {
    const head = '{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"pad":"';
    const tail = '"}}}';
    const pad = size - head.length - tail.length;
    const req = request(`${url}/mcp`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json', accept: ACCEPT, ...(chunked ? {} : { 'content-length': String(size) }) },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
      res.on('error', (e) => resolve({ status: res.statusCode!, error: e.message }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.write(head);
    const chunk = 'x'.repeat(64 * 1024);
    let left = pad;
    const more = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(chunk.slice(0, n))) { req.once('drain', more); return; }
      }
      req.end(tail);
    };
    more();
  });
}

describe('/mcp: a body over the limit', () => {
  let f: Front;
  let key: string;

  before(async () => { ({ f, key } = await frontWithKey(['developer'])); });
  after(async () => { await f.close(); });

  for (const chunked of [false, true]) {
    it(`is refused with 413 payload_too_large and never reaches the upstream (${chunked ? 'chunked' : 'Content-Length'})`, async () => {
      const before = f.upstream.find('/mcp').length;
      for (const size of [LIMIT + 1, 3 * LIMIT]) {
        const answer = await post(f.t.url, key, size, chunked);
        assert.equal(answer.status, 413, JSON.stringify(answer));
        assert.equal((JSON.parse(answer.body!) as { error: string }).error, 'payload_too_large');
        // The rest of the body is never read: the connection is not kept for another request.
        assert.equal(answer.connection, 'close');
      }
      assert.equal(f.upstream.find('/mcp').length, before, 'nothing was forwarded');
      // The hub goes on serving: a message at the limit is read whole and forwarded (the upstream
      // answers it: no session yet).
      const atLimit = await post(f.t.url, key, LIMIT, chunked);
      assert.notEqual(atLimit.status, 413, JSON.stringify(atLimit).slice(0, 300));
      assert.equal(f.upstream.find('/mcp').length, before + 1, 'the message at the limit was forwarded');
    });
  }
});
