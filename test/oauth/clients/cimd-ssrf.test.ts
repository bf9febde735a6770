/**
 * Issue 15 item 20, kept: a client ID metadata document is never fetched from a loopback,
 * private or reserved address, whatever form the address is written in (IPv4-mapped IPv6,
 * numeric and hexadecimal IPv4, IPv4-compatible IPv6), outside development mode.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { isPublicAddress } from '../../../src/oauth/clients/fetch-document.ts';
import { startHub, type TestHub } from '../../helpers/hub.ts';

describe('client ID metadata documents: no fetch from private addresses, however written', () => {
  let t: TestHub;
  let listener: Server;
  let port: number;
  let connections = 0;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    listener = createServer((socket) => { connections++; socket.destroy(); });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as { port: number }).port;
  });
  after(async () => {
    await t.close();
    await new Promise((resolve) => listener.close(resolve));
  });

  it('isPublicAddress refuses loopback, private and reserved addresses in every notation', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1',
      '::1', '::', '::ffff:127.0.0.1', '::ffff:7f00:1', '::127.0.0.1', '::7f00:1', 'fe80::1', 'fc00::1', 'fd12::1', '64:ff9b::7f00:1', '::ffff:10.0.0.1']) {
      assert.equal(isPublicAddress(a), false, a);
    }
    for (const a of ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '::ffff:93.184.216.34']) assert.equal(isPublicAddress(a), true, a);
  });

  it('/auth/authorize refuses such a client_id with an error page and never connects', async () => {
    for (const host of ['[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '2130706433', '0x7f.0.0.1', '0177.0.0.1', '127.1', '[::127.0.0.1]', '[::1]', 'localhost']) {
      const clientId = `https://${host}:${port}/client.json`;
      const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: 'https://app.example/cb', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const res = await fetch(`${t.url}/auth/authorize?${q}`, { redirect: 'manual' });
      assert.equal(res.status, 400, host);
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      await res.text();
    }
    assert.equal(connections, 0, 'no connection was made to the loopback listener');
  });
});
