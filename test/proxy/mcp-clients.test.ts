import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceAccountToken } from '../helpers/hub.ts';
import { mcpClient, frontWithKey, type Front } from './setup.ts';
import { TOOLS } from './upstream.ts';

describe('MCP through the hub, both SDK generations', () => {
  let f: Front;
  let developerKey: string;
  before(async () => { ({ f, key: developerKey } = await frontWithKey(['developer'])); });
  after(async () => { await f.close(); });

  for (const generation of [1, 2] as const) {
    it(`SDK ${generation}.x lists and calls tools with an API key`, async () => {
      const s = await mcpClient(generation, f.t.url, { 'x-api-key': developerKey });
      try {
        assert.deepEqual(await s.listTools(), [...TOOLS].sort());
        assert.equal(await s.call('memory_search', { query: 'graphs' }), 'results for graphs');
      } finally {
        await s.close();
      }
    });

    it(`SDK ${generation}.x lists and calls tools with a service-account token`, async () => {
      const { token, clientId } = await serviceAccountToken(f.t, ['developer']);
      const s = await mcpClient(generation, f.t.url, { authorization: `Bearer ${token}` });
      try {
        assert.deepEqual(await s.listTools(), [...TOOLS].sort());
        const seen = JSON.parse(await s.call('whoami')) as Record<string, string>;
        assert.equal(seen['x-user-id'], `service-account:${clientId}`);
        assert.equal(seen.authorization, undefined, 'the token never reaches the upstream');
      } finally {
        await s.close();
      }
    });
  }
});
