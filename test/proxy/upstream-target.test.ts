/**
 * upstreamTarget forwards the target the hub authorized, verbatim (issue 15 item 1: "the
 * forwarded target is the one decided on"), after MIMIR_UPSTREAM_URL's path prefix, and keeps
 * the base's host, port and path prefix whatever the target. Targets the upstream could read
 * another way never get here: checkTarget refuses them first.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OAuthError } from '../../src/errors.ts';
import { upstreamTarget } from '../../src/proxy/forward.ts';
import { checkTarget } from '../../src/proxy/routes.ts';

const INBOUND = [
  '/', '/api/nodes/node-1', '/api/nodes/node-1?depth=2&x=y', '/upstream/health', '/UPSTREAM/health?x', '/upstream/healthz',
  '/a/./b', '/a/../b', '/a/%2e%2e/b', '/a/%2E/b', '/a/b/..', '/a/.', '/.hidden/x', '/a..b/c', '/a/...',
  "/a'b", '/a"b', '/a<b>', '/a`b', '/a{b}', '/a|b', '/a^b', '/a\\b', '/a#frag', '/a?b#frag', "/a?b'c", '/a?b"c', '/a?<x>',
  '/a?x=%41&y=%zz', '/a%41', '/a%', '/a;b=c', '/a:b@c', '/a~b', '/a//b', '/a?b?c', '/a?', '/%00', '/a?%00',
  '//evil.example/x', '//', '/?u=http://x/./y', '/a?./..', '/a/.?x', '/a/..?x', 'http://evil.example/x', '*',
];

const accepted = (inbound: string) => { try { checkTarget(inbound); return true; } catch (e) { assert.ok(e instanceof OAuthError); return false; } };

describe('upstreamTarget', () => {
  for (const base of ['http://127.0.0.1:4000', 'http://mimir.internal:8080/base/', 'https://user:p%40ss@[::1]:9443/v2', 'http://mimir']) {
    it(`forwards every accepted target verbatim and never leaves the base's origin (base ${base})`, () => {
      const u = new URL(base);
      const prefix = u.pathname.replace(/\/+$/, '');
      const printable = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i))
        .flatMap((ch) => [`/p${ch}q`, `/p?q${ch}r`, `/${ch}`, `/p/${ch}${ch}/q`]);
      for (const inbound of [...INBOUND, ...printable]) {
        if (!accepted(inbound)) continue;
        const t = upstreamTarget(base, inbound);
        assert.equal(t.origin, u.origin, inbound);
        const expected = inbound.replace(/^\/upstream\/health(?=$|\?)/i, '/health');
        assert.equal(t.path, prefix + expected, JSON.stringify(inbound));
      }
    });
  }

  it('refuses, whoever calls it, a target that is not a path of the origin', () => {
    for (const inbound of ['//evil.example/x', 'http://evil.example/x', '*', '']) {
      assert.throws(() => upstreamTarget('http://127.0.0.1:4000', inbound), (e) => e instanceof OAuthError && e.error === 'invalid_request', inbound);
    }
  });

  it('checkTarget refuses fragments, dot and empty segments, backslashes and encoded separators in the path, not in the query', () => {
    for (const bad of ['/a#frag', '/a?b#frag', '/a/./b', '/a/../b', '/a/b/..', '/a/.', '/a//b', '/a\\b', '/a/%2e%2e/b', '/a%2Fb', '/a%5cb', '/%00', '//', 'http://x/y']) {
      assert.equal(accepted(bad), false, bad);
    }
    for (const good of ['/a?x=%2F..%2F', '/a?u=http://x/./y', '/a..b/c', '/.hidden/x', '/a/...', '/a%41']) {
      assert.equal(accepted(good), true, good);
    }
  });

  it("keeps MIMIR_UPSTREAM_URL's host, port and path prefix, and never sends credentials written into it", () => {
    const t = upstreamTarget('https://user:p%40ss@[::1]:9443/v2', '/api/x');
    assert.deepEqual({ ...t }, { origin: 'https://[::1]:9443', host: '[::1]:9443', path: '/v2/api/x' });
    const plain = upstreamTarget('http://mimir:80', '/a');
    assert.deepEqual({ ...plain }, { origin: 'http://mimir', host: 'mimir', path: '/a' });
  });
});
