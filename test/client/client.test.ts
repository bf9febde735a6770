import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientOptionsFromEnv, createMimirClient } from '../../src/client/index.ts';
import { startFront, type Front } from '../proxy/setup.ts';

describe('mimir-auth-hub/client', () => {
  let f: Front;
  let hubClock = Date.now();
  let svc: { id: string; secret: string };
  let tokenRequests = 0;
  /** The real fetch, counting what goes to the token endpoint. */
  const counting: typeof fetch = (input, init) => {
    if (String(input).endsWith('/auth/token')) tokenRequests += 1;
    return fetch(input, init);
  };

  before(async () => {
    f = await startFront({ now: () => hubClock, env: { MIMIR_SERVICE_ACCOUNT_TOKEN_LIFETIME: '600' } });
    svc = { id: 'pctx-client', secret: (await f.t.hub.serviceAccounts.create({ clientId: 'pctx-client', roles: ['developer'], allowUserContext: true })).clientSecret };
  });
  after(async () => { await f.close(); });

  const serviceClient = (now: () => number = Date.now) => createMimirClient({
    url: f.t.url, mode: 'service-account', serviceAccountId: svc.id, serviceAccountSecret: svc.secret, fetch: counting, now, fromEnv: false,
  });

  it('service-account mode: one token request for any number of concurrent callers', async () => {
    const client = serviceClient();
    tokenRequests = 0;
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => client.fetch(`/api/nodes/${i}`)));
    assert.deepEqual(responses.map((r) => r.status), Array(12).fill(200));
    await Promise.all(responses.map((r) => r.text()));
    assert.equal(tokenRequests, 1);
    await (await client.fetch('/api/nodes/x')).text();
    assert.equal(tokenRequests, 1, 'the cached token is reused');
  });

  it('renews the token before it expires, once, however many callers', async () => {
    let clientClock = Date.now();
    const client = serviceClient(() => clientClock);
    tokenRequests = 0;
    await (await client.fetch('/api/nodes/1')).text();
    const first = await client.accessToken();
    clientClock += 560_000; // 40 s before expiry: inside the renewal window
    const responses = await Promise.all(Array.from({ length: 5 }, () => client.fetch('/api/nodes/2')));
    await Promise.all(responses.map((r) => r.text()));
    assert.equal(tokenRequests, 2);
    assert.notEqual(await client.accessToken(), first);
  });

  it('on 401 token_expired renews and retries once', async () => {
    const client = serviceClient();
    tokenRequests = 0;
    await (await client.fetch('/api/nodes/1')).text();
    hubClock += 700_000; // the hub now sees the cached token as expired; the client does not know
    try {
      const before = f.upstream.find('/api/nodes/retry').length;
      const res = await client.fetch('/api/nodes/retry/embeddings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json() as { body: unknown }).body, { a: 1 });
      assert.equal(tokenRequests, 2);
      assert.equal(f.upstream.find('/api/nodes/retry').length, before + 1, 'the expired attempt never reached the upstream');
    } finally {
      hubClock = Date.now();
    }
  });

  it('service-account mode with MIMIR_FORWARD_USER_CONTEXT sends the user for an allowed account', async () => {
    const client = createMimirClient({ url: f.t.url, mode: 'service-account', serviceAccountId: svc.id, serviceAccountSecret: svc.secret, forwardUserContext: true, fromEnv: false });
    const res = await client.fetch('/api/nodes/1', { user: { id: 'alice', email: 'alice@example.com', roles: ['viewer'] } });
    const seen = (await res.json() as { identity: Record<string, string> }).identity;
    assert.equal(seen['x-user-id'], 'alice');
    assert.equal(seen['x-user-roles'], 'viewer');
  });

  it('api-key mode sends X-API-Key', async () => {
    const { key, record } = await f.t.hub.apiKeys.create({ name: 'pctx-key', roles: ['viewer'] });
    const client = createMimirClient({ url: f.t.url, mode: 'api-key', apiKey: key, fromEnv: false });
    assert.deepEqual(await client.headers(), { 'x-api-key': key });
    const res = await client.fetch('/api/nodes/1');
    assert.equal((await res.json() as { identity: Record<string, string> }).identity['x-user-id'], `api-key:${record.id}`);
  });

  it('token-forwarding mode sends the user\'s own token', async () => {
    const { token } = await f.t.hub.signer.issue({ sub: 'carol', client_id: 'mimir-web', roles: ['viewer'] }, 600);
    const client = createMimirClient({ url: f.t.url, mode: 'token-forwarding', fromEnv: false });
    const res = await client.fetch('/api/nodes/1', { user: { token } });
    assert.equal((await res.json() as { identity: Record<string, string> }).identity['x-user-id'], 'carol');
    await assert.rejects(client.fetch('/api/nodes/1'), /user's token/);
  });

  it('reads the seed\'s PCTX variables', () => {
    const o = clientOptionsFromEnv({
      MIMIR_URL: 'https://mimir.example', MIMIR_AUTH_MODE: 'service_account', MIMIR_SERVICE_ACCOUNT_ID: 'pctx-service',
      MIMIR_SERVICE_ACCOUNT_SECRET: 's3cret-value', MIMIR_FORWARD_USER_CONTEXT: 'true', MIMIR_USER_CONTEXT_HEADER: 'X-User-ID',
    });
    assert.deepEqual(o, { url: 'https://mimir.example', mode: 'service-account', serviceAccountId: 'pctx-service', serviceAccountSecret: 's3cret-value', forwardUserContext: true, userContextHeader: 'X-User-ID' });
    assert.throws(() => clientOptionsFromEnv({ MIMIR_AUTH_MODE: 'magic' }), /MIMIR_AUTH_MODE/);
  });

  it('a wrong secret fails with the hub\'s error code and without the secret in the message', async () => {
    const client = createMimirClient({ url: f.t.url, mode: 'service-account', serviceAccountId: svc.id, serviceAccountSecret: 'wrong-secret-value', fromEnv: false });
    await assert.rejects(client.fetch('/api/nodes/1'), (e: Error & { error?: string }) => e.error === 'invalid_client' && !e.message.includes('wrong-secret-value'));
  });
});
