/**
 * Attacker's review (after issue 19): a service account's access token stops working when the
 * account is deleted — only until an account with the same client_id exists again. The token
 * carries its roles and scope in its claims, so a token of the deleted `admin` account is an
 * admin token again the moment an administrator re-creates the id as a `viewer`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../helpers/hub.ts';

describe('a deleted service account\'s tokens stay dead when its client_id is reused', () => {
  let t: TestHub;
  let admin: string;
  before(async () => {
    t = await startHub({ storage: 'sqlite' });
    admin = (await t.hub.apiKeys.create({ name: 'ops', roles: ['admin'] })).key;
  });
  after(async () => { await t.close(); });

  const api = (method: string, path: string, body?: unknown) => fetch(`${t.url}${path}`, {
    method, headers: { 'x-api-key': admin, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
  });

  it('a token of the deleted admin account is refused after the id is re-created as a viewer', async () => {
    const created = await api('POST', '/auth/admin/service-accounts', { client_id: 'ci', roles: ['admin'] });
    assert.equal(created.status, 201);
    const secret = (await created.json() as { client_secret: string }).client_secret;
    const issued = await fetch(`${t.url}/auth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ci:${secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    const stolen = (await issued.json() as { access_token: string }).access_token;

    // The account is compromised: the operator deletes it, and its token stops working.
    assert.equal((await api('DELETE', '/auth/admin/service-accounts/ci')).status, 200);
    assert.equal((await fetch(`${t.url}/auth/me`, { headers: { authorization: `Bearer ${stolen}` } })).status, 401);

    // Later the id is provisioned again, for a read-only job.
    assert.equal((await api('POST', '/auth/admin/service-accounts', { client_id: 'ci', roles: ['viewer'] })).status, 201);

    const me = await fetch(`${t.url}/auth/me`, { headers: { authorization: `Bearer ${stolen}` } });
    const body = await me.json() as { permissions?: string[] };
    assert.equal(me.status, 401, `the deleted account's token works again, with permissions ${JSON.stringify(body.permissions)}`);
    const backdoor = await fetch(`${t.url}/auth/admin/api-keys`, {
      method: 'POST', headers: { authorization: `Bearer ${stolen}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'backdoor', roles: ['admin'] }),
    });
    assert.equal(backdoor.status, 401);
  });
});
