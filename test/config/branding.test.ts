/**
 * Issue 21: the pages' branding by configuration. A logo is an https URL (its origin joins the
 * pages' img-src) or a path on the hub's own origin; the accent is a CSS hex colour; anything
 * else stops the start naming the variable.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

const load = (env: Record<string, string>) => loadConfig(env, { dotenv: false });
const problems = (env: Record<string, string>): string[] => {
  try {
    load(env);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('branding variables', () => {
  it('default: the name Mimir, no logo, the hub\'s blue', () => {
    assert.deepEqual({ ...load({}).brand }, { name: 'Mimir', logoUrl: undefined, accent: '#2357d9' });
  });

  it('accepts a name, an https logo or a same-origin path, and a hex accent with or without # (a .env comment starts at #)', () => {
    const b = load({ MIMIR_BRAND_NAME: ' Acme Memory ', MIMIR_BRAND_LOGO_URL: 'https://cdn.acme.example/logo.svg', MIMIR_BRAND_ACCENT: '#AA3300' }).brand;
    assert.deepEqual({ ...b }, { name: 'Acme Memory', logoUrl: 'https://cdn.acme.example/logo.svg', accent: '#aa3300' });
    assert.equal(load({ MIMIR_BRAND_LOGO_URL: '/brand/logo.png' }).brand.logoUrl, '/brand/logo.png');
    assert.equal(load({ MIMIR_BRAND_ACCENT: 'a30' }).brand.accent, '#a30');
  });

  for (const logo of ['http://cdn.acme.example/logo.svg', 'javascript:alert(1)', 'data:image/svg+xml,<svg/>', '//evil.example/logo.svg', '/\\evil.example/logo.svg',
    'https://user:pass@cdn.acme.example/logo.svg', 'logo.svg', 'https://cdn.acme.example/a"b.svg']) {
    it(`refuses the logo ${JSON.stringify(logo)}, naming the variable`, () => {
      assert.ok(problems({ MIMIR_BRAND_LOGO_URL: logo }).some((p) => p.startsWith('MIMIR_BRAND_LOGO_URL:') && /https URL or a path/.test(p)));
    });
  }

  for (const accent of ['red', '#12345', '#1234567', 'rgb(1,2,3)', '#abc;background:url(x)']) {
    it(`refuses the accent ${JSON.stringify(accent)}, naming the variable`, () => {
      assert.ok(problems({ MIMIR_BRAND_ACCENT: accent }).some((p) => p.startsWith('MIMIR_BRAND_ACCENT:') && /hex colour/.test(p)));
    });
  }

  it('refuses a name with a control character or longer than 60 characters', () => {
    assert.ok(problems({ MIMIR_BRAND_NAME: 'Acme\u0007' }).some((p) => p.startsWith('MIMIR_BRAND_NAME:')));
    assert.ok(problems({ MIMIR_BRAND_NAME: 'x'.repeat(61) }).some((p) => p.startsWith('MIMIR_BRAND_NAME:')));
  });
});
