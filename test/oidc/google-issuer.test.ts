import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/index.ts';
import { acceptedIssuers, issuerMatches } from '../../src/oidc/claims.ts';
import { loadProviders } from '../../src/oidc/providers.ts';

describe('Google issuer forms (fixtures/provider-claims/google.json)', () => {
  const [google] = loadProviders(loadConfig({ MIMIR_AUTH_PROVIDER: 'google', MIMIR_OAUTH_CLIENT_ID: 'client.apps.googleusercontent.com' }, { dotenv: false }));

  it('accepts https://accounts.google.com and the legacy scheme-less accounts.google.com', () => {
    assert.ok(google);
    assert.equal(google.issuer, 'https://accounts.google.com');
    assert.deepEqual(acceptedIssuers(google), ['https://accounts.google.com', 'accounts.google.com']);
    assert.equal(issuerMatches(google, 'https://accounts.google.com'), true);
    assert.equal(issuerMatches(google, 'accounts.google.com'), true);
  });

  it('accepts nothing else', () => {
    for (const iss of ['http://accounts.google.com', 'accounts.google.com.evil.example', 'https://accounts.google.com/', 'evil.example/accounts.google.com']) {
      assert.equal(issuerMatches(google!, iss), false, iss);
    }
  });

  it('other kinds get no alias', () => {
    const [okta] = loadProviders(loadConfig({ MIMIR_AUTH_PROVIDER: 'okta', MIMIR_OKTA_DOMAIN: 'example.okta.com', MIMIR_OKTA_AUTHORIZATION_SERVER: 'default', MIMIR_OAUTH_CLIENT_ID: 'x' }, { dotenv: false }));
    assert.deepEqual(acceptedIssuers(okta!), [okta!.issuer]);
    assert.equal(issuerMatches(okta!, okta!.issuer.replace(/^https:\/\//, '')), false);
  });
});
