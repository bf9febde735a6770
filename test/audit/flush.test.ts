import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createAudit } from '../../src/audit/index.ts';
import type { Config } from '../../src/config/index.ts';

describe('audit log flush', () => {
  it('resolves only once every line recorded so far is in the file (so nothing is lost at shutdown)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mimir-audit-')), 'audit.log');
    const audit = createAudit({ audit: { enabled: true, destination: 'file', file, level: 'info' } } as unknown as Config);
    await audit.flush(); // nothing recorded yet: resolves, never hangs
    for (let round = 1; round <= 20; round++) {
      for (let i = 0; i < 3; i++) audit.record({ type: 'access_denied', outcome: 'failure', reason: `round-${round}-${i}` });
      await audit.flush();
      const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string });
      assert.equal(lines.length, round * 3);
      assert.equal(lines.at(-1)!.reason, `round-${round}-2`);
    }
  });
});
