/**
 * upstreamTarget builds the upstream path without a URL object when parsing would not change
 * the inbound URL; it must agree with WHATWG URL parsing on every input, and keep the base's host,
 * port, credentials and path prefix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { upstreamTarget } from '../../src/proxy/forward.ts';

/** What the proxy sent before: the path of `new URL(prefix + inbound, origin)`, or the error. */
function viaUrl(base: string, inbound: string): string {
  const u = new URL(base);
  const prefix = u.pathname.replace(/\/+$/, '');
  const rewritten = inbound.replace(/^\/upstream\/health(?=$|\?)/i, '/health');
  try {
    const t = new URL(prefix + rewritten, u.origin);
    return t.pathname + t.search;
  } catch (e) {
    return `throws ${(e as Error).name}`;
  }
}

function viaTarget(base: string, inbound: string): string {
  try {
    return upstreamTarget(base, inbound).path;
  } catch (e) {
    return `throws ${(e as Error).name}`;
  }
}

const INBOUND = [
  '/', '/api/nodes/node-1', '/api/nodes/node-1?depth=2&x=y', '/upstream/health', '/UPSTREAM/health?x', '/upstream/healthz',
  '/a/./b', '/a/../b', '/a/%2e%2e/b', '/a/%2E/b', '/a/b/..', '/a/.', '/.hidden/x', '/a..b/c', '/a/...',
  "/a'b", '/a"b', '/a<b>', '/a`b', '/a{b}', '/a|b', '/a^b', '/a\\b', '/a b', '/a#frag', '/a?b#frag', "/a?b'c", '/a?b"c', '/a?<x>',
  '/a?x=%41&y=%zz', '/a%41', '/a%', '/ä', '/a?ä', '/a;b=c', '/a:b@c', '/a~b', '/a//b', '/a?b?c', '/a?', '/%00', '/a?%00',
  '//evil.example/x', '//', '/?u=http://x/./y', '/a?./..', '/a/.?x', '/a/..?x',
];

describe('upstreamTarget', () => {
  for (const base of ['http://127.0.0.1:4000', 'http://mimir.internal:8080/base/', 'https://user:p%40ss@[::1]:9443/v2', 'http://mimir']) {
    it(`agrees with URL parsing for every inbound URL (base ${base})`, () => {
      for (const inbound of INBOUND) {
        assert.equal(viaTarget(base, inbound), viaUrl(base, inbound), inbound);
      }
      // Every printable ASCII character, in the path and in the query.
      for (let c = 0x21; c < 0x7f; c++) {
        const ch = String.fromCharCode(c);
        for (const inbound of [`/p${ch}q`, `/p?q${ch}r`, `/${ch}`, `/p/${ch}${ch}/q`]) {
          assert.equal(viaTarget(base, inbound), viaUrl(base, inbound), JSON.stringify(inbound));
        }
      }
    });
  }

  it("keeps MIMIR_UPSTREAM_URL's host, port and path prefix, and never sends credentials written into it", () => {
    const t = upstreamTarget('https://user:p%40ss@[::1]:9443/v2', '/api/x');
    assert.deepEqual({ ...t }, { origin: 'https://[::1]:9443', host: '[::1]:9443', path: '/v2/api/x' });
    const plain = upstreamTarget('http://mimir:80', '/a');
    assert.deepEqual({ ...plain }, { origin: 'http://mimir', host: 'mimir', path: '/a' });
  });
});
