/**
 * MIMIR_* names nothing reads (issue 21, item 6): found with a did-you-mean; the hub's own, its
 * client's, Mimir's own and every name the documentation uses are known.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { didYouMean, editDistance } from '../../src/config/suggest.ts';
import { isKnownVariable, unknownVariables } from '../../src/config/unknown.ts';
import { VARIABLE_NAMES } from '../../src/config/variables.ts';

const root = join(import.meta.dirname, '..', '..');

describe('unknown MIMIR_* variables', () => {
  it('finds misspellings with the name meant, from the environment and .env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-unknown-'));
    writeFileSync(join(dir, '.env'), 'MIMIR_JWT_ALGORITM=ES256\nMIMIR_AUTH_PORT=9043\n');
    assert.deepEqual(unknownVariables({ MIMIR_AUTH_PROT: '1', MIMIR_REDIS_UR: 'x', PATH: '/bin', MIMIR_ENABLE_SECURITY: 'true' }, { cwd: dir }), [
      { name: 'MIMIR_AUTH_PROT', source: 'environment', suggestion: 'MIMIR_AUTH_PORT' },
      { name: 'MIMIR_JWT_ALGORITM', source: '.env', suggestion: 'MIMIR_JWT_ALGORITHM' },
      { name: 'MIMIR_REDIS_UR', source: 'environment', suggestion: 'MIMIR_REDIS_URL' },
    ]);
    assert.deepEqual(unknownVariables({ MIMIR_ZZZ_QQQ_XXX: '1' }, { dotenv: false }), [{ name: 'MIMIR_ZZZ_QQQ_XXX', source: 'environment', suggestion: undefined }]);
  });

  it('knows the hub\'s variables, Mimir\'s own, its families and every name the documentation uses', () => {
    for (const name of VARIABLE_NAMES) assert.ok(isKnownVariable(name), name);
    for (const name of ['MIMIR_ENABLE_SECURITY', 'MIMIR_PORT', 'MIMIR_JWT_SECRET', 'MIMIR_ENABLE_RBAC', 'MIMIR_EMBEDDINGS_MODEL', 'MIMIR_DEV_USER_ALICE',
      'MIMIR_CONTEXT_WINDOW_GPT_4O', 'MIMIR_URL', 'MIMIR_HOME', 'MIMIR_SERVICE_ACCOUNT_SECRET', 'MIMIR_TEST_REDIS_URL']) {
      assert.ok(isKnownVariable(name), name);
    }
    const docs = ['README.md', '.env.example', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
    // The README's own example of a misspelling.
    const examples = new Set(['MIMIR_AUTH_PROT']);
    for (const file of docs) {
      for (const [name] of readFileSync(join(root, file), 'utf8').matchAll(/MIMIR_[A-Z0-9_]*[A-Z0-9]\b(?!_)/g)) {
        if (!examples.has(name) && !/^MIMIR_(BRAND|OAUTH|DEV_USER)$/.test(name)) assert.ok(isKnownVariable(name), `${file} names ${name}, which the hub would warn about`);
      }
    }
  });

  it('did you mean: one slip in three letters, transpositions and case count once', () => {
    assert.equal(editDistance('PROT', 'PORT'), 1);
    assert.equal(editDistance('clientID', 'clientId'), 0);
    assert.equal(didYouMean('octa', ['okta', 'auth0', 'azure', 'google']), 'okta');
    assert.equal(didYouMean('clientID', ['id', 'clientId', 'clientSecret']), 'clientId');
    assert.equal(didYouMean('github', ['okta', 'auth0', 'azure', 'google', 'keycloak', 'cognito', 'generic']), undefined, 'no wild guesses');
  });
});
