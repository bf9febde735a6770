/**
 * `mimir-auth token --service-account ID` against a hub that does not answer said only "fetch
 * failed": now it names the URL it tried and how to point it elsewhere (--url, MIMIR_URL), without
 * the secret. The client library throws a MimirClientError (error `unreachable`) for the same.
 * Found by a new user's review; failed at 8f29cfc.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../admin/support.ts';
import { freePort } from '../helpers/hub.ts';

it('token --service-account: an unreachable hub is named, with --url/MIMIR_URL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mimir-token-unreachable-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const url = `http://127.0.0.1:${await freePort()}`;
  const r = await cli(['token', '--service-account', 'pctx-service', '--no-cache'], { MIMIR_URL: url, MIMIR_SERVICE_ACCOUNT_SECRET: 'x'.repeat(43) }, dir);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(url), `stderr should name ${url}: ${r.stderr}`);
  assert.match(r.stderr, /--url|MIMIR_URL/);
  assert.doesNotMatch(r.stderr, /x{43}/);
  // A URL carrying credentials is refused (fetch would, repeating the password), without repeating them.
  const withUser = url.replace('http://', 'http://ops:url-password@');
  const r2 = await cli(['token', '--service-account', 'pctx-service', '--no-cache'], { MIMIR_URL: withUser, MIMIR_SERVICE_ACCOUNT_SECRET: 'x'.repeat(43) }, dir);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /must not carry a user name or password/);
  assert.doesNotMatch(r2.stderr, /url-password|x{43}/);
});
