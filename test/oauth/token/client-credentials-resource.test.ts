/**
 * Issue 17 item 4: RFC 8707 §2 `resource` at client_credentials. It was ignored: a service
 * account asking for a token for `/mcp` got one for the hub's general audience, good everywhere.
 * Now the token's `aud` is the resource asked for (and so good only there: src/authz), and a
 * resource the hub does not serve is `invalid_target`, as at the authorization endpoint.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { startFront, mcpClient, type Front } from '../../proxy/setup.ts';
import { TOOLS } from '../../proxy/upstream.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('client_credentials with an RFC 8707 resource', () => {
  let front: Front;
  let secret: string;
  const token = async (form: Record<string, string>) => {
    const res = await fetch(`${front.t.url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('mcp-worker', secret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...form }).toString(),
    });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };

  before(async () => {
    front = await startFront();
    secret = (await front.t.hub.serviceAccounts.create({ clientId: 'mcp-worker', roles: ['developer'] })).clientSecret;
  });
  after(async () => { await front?.close(); });

  it('the token\'s aud is the resource asked for, and it is good there only', async () => {
    const mcp = `${front.t.url}/mcp`;
    const issued = await token({ resource: mcp });
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.equal(decodeJwt(issued.body.access_token).aud, mcp);
    // At /mcp, through the hub to the upstream, with both MCP SDK generations.
    for (const generation of [1, 2] as const) {
      const session = await mcpClient(generation, front.t.url, { authorization: `Bearer ${issued.body.access_token}` });
      try {
        assert.deepEqual(await session.listTools(), [...TOOLS].sort());
      } finally {
        await session.close();
      }
    }
    // Anywhere else it is no credential (RFC 8707: issued for another resource).
    for (const path of ['/api/nodes/types', '/auth/me']) {
      const res = await fetch(`${front.t.url}${path}`, { headers: { authorization: `Bearer ${issued.body.access_token}` } });
      assert.equal(res.status, 401, path);
      assert.equal((await res.json() as { error: string }).error, 'invalid_token', path);
    }
  });

  it('the origin root as resource (with or without its slash) is good for every path', async () => {
    for (const resource of [front.t.url, `${front.t.url}/`]) {
      const issued = await token({ resource });
      assert.equal(issued.status, 200, JSON.stringify(issued.body));
      assert.equal(decodeJwt(issued.body.access_token).aud, front.t.url);
      const me = await fetch(`${front.t.url}/auth/me`, { headers: { authorization: `Bearer ${issued.body.access_token}` } });
      assert.equal(me.status, 200);
    }
  });

  it('without a resource, the hub\'s general audience as before', async () => {
    const issued = await token({});
    assert.equal(decodeJwt(issued.body.access_token).aud, front.t.config.jwt.audience);
  });

  it('a resource the hub does not serve, or not an absolute URI without fragment, is invalid_target', async () => {
    for (const resource of ['https://elsewhere.example/mcp', `${front.t.url}/mcp#x`, 'mcp', `${front.t.url}/api`]) {
      const r = await token({ resource });
      assert.equal(r.status, 400, resource);
      assert.equal(r.body.error, 'invalid_target', resource);
    }
  });

  it('several resources (RFC 8707 §2 allows them; a token of the hub is for one) are invalid_target, not a repeated-parameter invalid_request', async () => {
    const res = await fetch(`${front.t.url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('mcp-worker', secret) },
      body: new URLSearchParams([['grant_type', 'client_credentials'], ['resource', `${front.t.url}/mcp`], ['resource', front.t.url]]).toString(),
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_target');
  });
});
