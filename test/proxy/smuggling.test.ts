/**
 * Issue 15 item 20, kept: requests a proxy and its upstream could frame differently (request
 * smuggling) are refused at the hub's door with 400, and nothing reaches the upstream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { frontWithKey, type Front } from './setup.ts';

/** Writes raw bytes; resolves with what came back before the hub closed the connection. */
function rawExchange(url: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.setTimeout(5000, () => { socket.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); });
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

describe('request smuggling: ambiguous framing is refused, never forwarded', () => {
  let f: Front;
  let key: string;
  before(async () => { ({ f, key } = await frontWithKey(['admin'])); });
  after(async () => f.close());

  const head = (host: string) => `POST /api/nodes HTTP/1.1\r\nHost: ${host}\r\nX-API-Key: ${key}\r\nContent-Type: application/json\r\n`;

  it('Content-Length with Transfer-Encoding, two lengths, odd encodings, folded or spaced field names: 400', async () => {
    const host = new URL(f.t.url).host;
    const smuggled = 'GET /api/nodes/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const cases: Record<string, string> = {
      'CL.TE': `${head(host)}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      'TE.CL': `${head(host)}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`,
      'two Content-Lengths': `${head(host)}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}${smuggled}`,
      'Content-Length list': `${head(host)}Content-Length: 2, 40\r\n\r\n{}${smuggled}`,
      'TE not ending in chunked': `${head(host)}Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      'TE xchunked': `${head(host)}Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      'space before the colon': `${head(host)}Content-Length : 2\r\n\r\n{}`,
      'obsolete line folding': `${head(host)}Transfer-Encoding:\r\n chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      'bare LF in the header block': `POST /api/nodes HTTP/1.1\nHost: ${host}\nX-API-Key: ${key}\nContent-Length: 2\n\n{}`,
      'NUL in a field value': `${head(host)}X-Odd: a\u0000b\r\nContent-Length: 2\r\n\r\n{}`,
    };
    const before = f.upstream.received.length;
    for (const [name, bytes] of Object.entries(cases)) {
      const answer = await rawExchange(f.t.url, bytes);
      assert.match(answer, /^HTTP\/1\.1 400 /, `${name}: ${answer.slice(0, 80)}`);
      assert.doesNotMatch(answer.slice(12), /HTTP\/1\.1 [0-9]{3} /, `${name}: a second answer came back`);
    }
    assert.equal(f.upstream.received.length, before, 'nothing reached the upstream');
    assert.equal(f.upstream.find('/api/nodes/smuggled').length, 0);
  });

  it('a GET with a body: the body never goes upstream, so nothing hidden in it is read as a request', async () => {
    const host = new URL(f.t.url).host;
    const smuggled = 'GET /api/nodes/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const answer = await rawExchange(f.t.url, `GET /api/nodes/1 HTTP/1.1\r\nHost: ${host}\r\nX-API-Key: ${key}\r\nConnection: close\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`);
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.equal(f.upstream.find('/api/nodes/smuggled').length, 0);
    const seen = f.upstream.find('/api/nodes/1').at(-1)!;
    assert.equal(seen.headers['content-length'], undefined);
  });
});
