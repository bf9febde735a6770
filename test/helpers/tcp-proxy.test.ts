/** The fault-injecting TCP proxy does what the fault tests rely on. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client socket through the proxy and everything it has received so far. */
async function connect(port: number): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  const socket = createConnection({ host: '127.0.0.1', port });
  let data = '';
  let closed = false;
  socket.on('data', (d) => { data += d.toString(); });
  socket.on('close', () => { closed = true; });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  return { socket, received: () => data, closed: () => closed };
}

describe('test/helpers/tcp-proxy', () => {
  let echo: Server;
  let proxy: TcpProxy;
  before(async () => {
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    proxy = await startTcpProxy(typeof address === 'object' && address ? address.port : 0);
  });
  after(async () => {
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  it('pass forwards both ways', async () => {
    const c = await connect(proxy.port);
    c.socket.write('ping');
    await sleep(100);
    assert.equal(c.received(), 'ping');
    c.socket.destroy();
  });

  it('blackhole keeps the connection and says nothing, holds the bytes, and pass delivers them in order', async () => {
    const c = await connect(proxy.port);
    proxy.blackhole();
    c.socket.write('one');
    c.socket.write('two');
    await sleep(300);
    assert.equal(c.received(), '', 'nothing forwarded');
    assert.equal(c.closed(), false, 'nobody told');
    const late = await connect(proxy.port); // new connections are accepted, and held too
    late.socket.write('three');
    await sleep(100);
    assert.equal(late.received(), '');
    await proxy.pass();
    await sleep(200);
    assert.equal(c.received(), 'onetwo');
    assert.equal(late.received(), 'three');
    c.socket.destroy();
    late.socket.destroy();
  });

  it('cut closes every connection and refuses new ones until pass', async () => {
    const c = await connect(proxy.port);
    await proxy.cut();
    await sleep(100);
    assert.equal(c.closed(), true);
    await assert.rejects(connect(proxy.port), /ECONNREFUSED/);
    await proxy.pass();
    const again = await connect(proxy.port);
    again.socket.write('back');
    await sleep(100);
    assert.equal(again.received(), 'back');
    again.socket.destroy();
  });
});
