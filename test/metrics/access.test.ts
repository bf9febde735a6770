/**
 * /metrics/auth's loopback exemption is for a scraper on the hub's host, not for whatever a
 * reverse proxy on that host forwards (it connects from loopback too): a request carrying a
 * forwarding header needs a credential with metrics:read like any remote one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../helpers/hub.ts';

describe('/metrics/auth behind a reverse proxy on the same host (MIMIR_TRUST_PROXY off)', () => {
  let t: TestHub;
  before(async () => { t = await startHub({ storage: 'memory' }); });
  after(async () => t.close());

  it('a forwarded request is not a local scraper', async () => {
    for (const header of [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { 'x-real-ip': '203.0.113.9' }]) {
      const res = await fetch(`${t.url}/metrics/auth`, { headers: header });
      assert.equal(res.status, 401, JSON.stringify(header));
      await res.text();
    }
    const local = await fetch(`${t.url}/metrics/auth`);
    assert.equal(local.status, 200);
    await local.text();
  });
});
