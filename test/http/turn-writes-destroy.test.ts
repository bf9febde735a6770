/**
 * src/http/turn-writes.ts, review of 0ddba2f: what was written before destroy() goes out, all of
 * it, as when writes went at once; an exception thrown by what a write's callback runs is not
 * swallowed. (On 0ddba2f only the first waiting write went out: the rest, buffered by Writable
 * behind it, was dropped by destroy(); and such an exception became ERR_MULTIPLE_CALLBACK.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { writeAtTurnEnd } from '../../src/http/turn-writes.ts';
import { startFront } from '../proxy/setup.ts';

/** What a client reads from a server whose accepted sockets write at the turn's end and go to `accepted`. */
async function exchange(accepted: (s: Socket) => void): Promise<string> {
  const srv = createServer((s) => { writeAtTurnEnd(s); s.on('error', () => undefined); accepted(s); });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  try {
    const c = connect((srv.address() as { port: number }).port, '127.0.0.1');
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', () => undefined);
    const timer = setTimeout(() => c.destroy(), 2000);
    await once(c, 'close');
    clearTimeout(timer);
    return Buffer.concat(chunks).toString();
  } finally {
    srv.close();
  }
}

describe('writes at the turn\'s end, then destroy()', () => {
  it('two writes then destroy() in the same turn: both arrive, as on a plain socket', async () => {
    assert.equal(await exchange((s) => { s.write('first;'); s.write('second;'); s.destroy(); }), 'first;second;');
  });

  it('a write callback that throws: the exception is uncaught (as on a plain socket) and the socket\'s later writes still go out', async () => {
    const uncaught: string[] = [];
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', (e) => uncaught.push(e.message));
    try {
      const got = await exchange((s) => {
        s.write('a;', () => { throw new Error('a bug in a write callback'); });
        setTimeout(() => s.end('b;'), 50);
      });
      assert.equal(got, 'a;b;');
      assert.deepEqual(uncaught, ['a bug in a write callback']);
    } finally {
      process.removeAllListeners('uncaughtException');
      for (const l of saved) process.on('uncaughtException', l);
    }
  });
});

describe('a drain ending an event stream in the turn an event was relayed', () => {
  it('the stream still ends with its final chunk (a clean end, not a cut-off)', async () => {
    const f = await startFront();
    try {
      const key = (await f.t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] })).key;
      const server = f.t.app.server;
      let streamRes: ServerResponse | undefined;
      server.on('request', (req: IncomingMessage, res: ServerResponse) => { if (req.url === '/api/nodes/events') streamRes = res; });
      const c = connect(Number(new URL(f.t.url).port), '127.0.0.1');
      let text = '';
      c.on('data', (d: Buffer) => { text += d.toString('latin1'); });
      c.on('error', () => undefined);
      c.write(`GET /api/nodes/events HTTP/1.1\r\nHost: x\r\nX-API-Key: ${key}\r\nAccept: text/event-stream\r\n\r\n`);
      await f.upstream.sse.opened;
      f.upstream.sse.release();
      while (!text.includes('"n":1')) await new Promise((r) => setTimeout(r, 10));
      const closed = once(c, 'close');
      // One turn: an event relayed (node:http uncorks it on the next tick, as after undici's data
      // callback), then the drain of src/cli/serve.ts begins: app.close(), closeIdleConnections(), streams.endAll().
      streamRes!.write('data: {"late":true}\n\n');
      await new Promise((r) => process.nextTick(r));
      const appClosed = f.t.app.close();
      server.closeIdleConnections();
      const ended = f.t.hub.streams.endAll();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
      await Promise.race([Promise.all([appClosed, ended]), new Promise((r) => setTimeout(r, 1000))]);
      c.destroy();
      assert.ok(text.includes('data: {"late":true}'), 'the event relayed in that turn arrived');
      assert.ok(text.endsWith('\r\n0\r\n\r\n'), `the stream ended with its final chunk: ${JSON.stringify(text.slice(-40))}`);
    } finally {
      await f.upstream.close();
      await f.t.hub.close();
    }
  });
});
