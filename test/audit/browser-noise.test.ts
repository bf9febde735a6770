/**
 * Issue 17 item 7: a browser's automatic `/favicon.ico` (and a crawler's `/robots.txt`) went to
 * the proxy and was written to the audit log as an authentication failure. They are answered by
 * the hub, without a credential and without an audit event; the audit lines of real denials name
 * the method and path. Read from the audit file the hub writes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serviceAccountToken } from '../helpers/hub.ts';
import { startFront, type Front } from '../proxy/setup.ts';

interface Line { event: string; reason?: string; method?: string; path?: string }

describe('favicon, robots.txt and the audit lines of denials', () => {
  let front: Front;
  let file: string;
  const lines = async (): Promise<Line[]> => {
    await front.t.hub.audit.flush();
    return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  };

  before(async () => {
    front = await startFront({ env: { MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file' } });
    file = join(front.t.dataDir, 'audit.log');
  });
  after(async () => { await front?.close(); });

  it('/robots.txt disallows everything and /favicon.ico answers 204, with no audit event and without reaching the upstream', async () => {
    const before = (await lines()).length;
    const upstreamBefore = front.upstream.received.length;
    const robots = await fetch(`${front.t.url}/robots.txt`);
    assert.equal(robots.status, 200);
    assert.match(robots.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await robots.text(), 'User-agent: *\nDisallow: /\n');
    // As a browser asks for it: an image, with whatever cookie it holds (none here).
    const favicon = await fetch(`${front.t.url}/favicon.ico`, { headers: { accept: 'image/avif,image/webp,*/*' } });
    assert.equal(favicon.status, 204);
    assert.equal(await favicon.text(), '');
    assert.equal((await fetch(`${front.t.url}/favicon.ico`, { method: 'HEAD' })).status, 204);
    // Other methods are not proxied either: nothing of the upstream's lives there.
    assert.equal((await fetch(`${front.t.url}/favicon.ico`, { method: 'POST' })).status, 404);
    const after = await lines();
    assert.deepEqual(after.slice(before), [], 'no audit event');
    assert.equal(front.upstream.received.length, upstreamBefore, 'the upstream saw nothing');
  });

  it('a refused authentication and a refused permission name the method and path', async () => {
    const before = (await lines()).length;
    const unauthenticated = await fetch(`${front.t.url}/api/nodes/42?secret=no`, { method: 'DELETE' });
    assert.equal(unauthenticated.status, 401);
    const { token } = await serviceAccountToken(front.t, ['viewer']);
    const forbidden = await fetch(`${front.t.url}/api/nodes/42`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(forbidden.status, 403);
    const events = (await lines()).slice(before);
    const failed = events.find((e) => e.event === 'authentication_failed');
    assert.deepEqual({ method: failed?.method, path: failed?.path }, { method: 'DELETE', path: '/api/nodes/42' });
    const denied = events.find((e) => e.event === 'access_denied');
    assert.deepEqual({ method: denied?.method, path: denied?.path }, { method: 'DELETE', path: '/api/nodes/42' });
  });

  it('a cross-site request carrying the session cookie is refused, and its audit line names the method and path', async () => {
    const before = (await lines()).length;
    const res = await fetch(`${front.t.url}/auth/logout`, {
      method: 'POST', headers: { cookie: `${front.t.config.session.cookie.name}=whatever`, origin: 'https://evil.example' },
    });
    assert.equal(res.status, 403);
    const denied = (await lines()).slice(before).find((e) => e.event === 'access_denied');
    assert.equal(denied?.reason, 'cross_origin_cookie_request');
    assert.deepEqual({ method: denied?.method, path: denied?.path }, { method: 'POST', path: '/auth/logout' });
  });
});
