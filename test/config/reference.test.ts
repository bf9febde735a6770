/**
 * Each configuration variable is described once (src/config/variables.ts); what is written from
 * that description must match it: `.env.example` and the README's configuration reference.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { envExample } from '../../src/config/index.ts';
import { withReference } from '../../src/config/reference.ts';
import { VARIABLES } from '../../src/config/variables.ts';

describe('the configuration, described once', () => {
  it('the README\'s configuration reference is the one generated from the variables (run `npm run docs`)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    assert.equal(readme, withReference(readme), 'README.md is stale: run `npm run docs`');
    for (const v of VARIABLES) assert.ok(readme.includes(`\`${v.name}\``), v.name);
  });

  it('.env.example is the one generated from the variables', () => {
    assert.equal(readFileSync(new URL('../../.env.example', import.meta.url), 'utf8'), envExample(), '.env.example is stale: run `npm run docs`');
  });

  it('every variable has a parser, a meaning, a section and a release, and names are unique', () => {
    const names = new Set<string>();
    for (const v of VARIABLES) {
      assert.match(v.name, /^MIMIR_[A-Z0-9_]+$/);
      assert.ok(!names.has(v.name), `${v.name} twice`);
      names.add(v.name);
      assert.ok(v.description.length > 10 && v.section && v.since, v.name);
      assert.equal(typeof v.parse.safeParse, 'function', v.name);
      if (v.default !== undefined) assert.ok(v.parse.safeParse(v.default).success, `${v.name}'s default parses`);
    }
  });
});
