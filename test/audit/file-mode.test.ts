/** The audit log names people and what they did: its file is readable by the hub's user only. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub, type TestHub } from '../helpers/hub.ts';

describe('the audit log file', () => {
  let t: TestHub;
  const file = join(mkdtempSync(join(tmpdir(), 'mimir-audit-')), 'logs', 'audit.log');
  before(async () => { t = await startHub({ storage: 'memory', env: { MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file', MIMIR_AUDIT_LOG_FILE: file } }); });
  after(async () => t.close());

  it('is created 0600 in a 0700 directory', () => {
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(file, '..')).mode & 0o777, 0o700);
  });
});
