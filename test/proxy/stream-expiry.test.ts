/**
 * A proxied event stream ends when the credential that opened it expires, as it ends when that
 * credential is revoked (src/proxy/open-streams.ts): a token of a second opens Mimir's execution
 * stream, and no event Mimir sends after the token's `exp` reaches the caller. Found by an
 * attacker's review; failed at 8f29cfc (the stream carried events long after the token was refused
 * everywhere else).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { startMimir, type Mimir } from '../helpers/mimir.ts';
import { RBAC_FIXTURE } from './setup.ts';

describe('an event stream opened with a short-lived token', () => {
  let mimir: Mimir;
  let t: TestHub;
  before(async () => {
    mimir = await startMimir({ heartbeatMs: 200 });
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
  });
  after(async () => { await t?.close(); await mimir?.close(); });

  it('ends at the token\'s expiry; an event sent after it never reaches the caller', async () => {
    const { token } = await t.hub.signer.issue({ sub: 'alice', roles: ['viewer'], scope: '' } as never, 1);
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;
    const res = await fetch(`${t.url}/api/execution-stream/e1`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    await mimir.executions.opened('e1');
    const reader = res.body!.getReader();
    // Read until the stream ends (the hub cuts it) or 5 s pass.
    let ended = false;
    const deadline = Date.now() + 5000;
    try {
      while (Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), 250))]);
        if (chunk === null) continue;
        if (chunk.done) { ended = true; break; }
      }
    } catch {
      ended = true; // cut off as a network failure: what is expected
    }
    const at = Date.now();
    assert.ok(ended, 'the stream was still open 5 s after it opened with a 1 s token');
    assert.ok(at >= exp * 1000 - 50, `ended at ${at}, before the token's expiry ${exp * 1000}`);
    // Heartbeats were flowing until then; Mimir's next event has nowhere to go.
    mimir.executions.release('e1', 'task-complete', { secret: 'after-expiry' });
    await reader.cancel().catch(() => undefined);
    assert.equal(t.hub.streams.size, 0, 'no stream is left open');
  });
});
