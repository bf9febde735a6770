/**
 * Issue 17 item 5: `dpop_signing_alg_values_supported` is one list — what the authorization
 * server metadata says, what both protected resource metadata documents say, what a DPoP
 * challenge says (`algs`, RFC 9449 §7.1) and what the proof verifier accepts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { basic, postForm } from '../helpers/http.ts';

/** A proof signed with `alg` (RFC 9449 §4.2) for the token endpoint. */
async function proofWith(alg: string, htu: string): Promise<{ proof: string; jkt: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const proof = await new SignJWT({ htm: 'POST', htu, jti: randomBytes(12).toString('base64url') })
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
    .setIssuedAt()
    .sign(privateKey);
  return { proof, jkt: await calculateJwkThumbprint(jwk) };
}

describe('DPoP algorithms: one list, advertised and enforced alike', () => {
  let t: TestHub;
  let secret: string;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    secret = (await t.hub.serviceAccounts.create({ clientId: 'dpop-algs', roles: ['developer'] })).clientSecret;
  });
  after(async () => { await t?.close(); });

  const tokenRequest = (proof: string) => postForm(`${t.url}/auth/token`, { grant_type: 'client_credentials' }, { ...basic('dpop-algs', secret), dpop: proof });

  it('AS metadata, both PRM documents and the DPoP challenge list the same algorithms', async () => {
    const as = await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>;
    const list = as.dpop_signing_alg_values_supported!;
    assert.ok(list.length > 0);
    for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp', '/.well-known/openid-configuration']) {
      const doc = await (await fetch(`${t.url}${path}`)).json() as Record<string, string[]>;
      assert.deepEqual(doc.dpop_signing_alg_values_supported, list, path);
    }
    // RFC 9449 §7.1: the challenge of a resource names the algorithms it accepts (a bound token sent without its proof).
    const bound = await tokenRequest((await proofWith('ES256', `${t.url}/auth/token`)).proof);
    const res = await fetch(`${t.url}/auth/me`, { headers: { authorization: `DPoP ${bound.body.access_token}` } });
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^DPoP /);
    assert.deepEqual(/algs="([^"]*)"/.exec(challenge)?.[1]?.split(' '), list);
  });

  it('a proof with each listed algorithm is accepted and binds the token', async () => {
    const as = await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>;
    for (const alg of as.dpop_signing_alg_values_supported!) {
      const { proof, jkt } = await proofWith(alg, `${t.url}/auth/token`);
      const res = await tokenRequest(proof);
      assert.equal(res.status, 200, `${alg}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.token_type, 'DPoP', alg);
      assert.equal(JSON.parse(Buffer.from(res.body.access_token.split('.')[1], 'base64url').toString()).cnf.jkt, jkt, alg);
    }
  });

  it('a proof with an algorithm not listed is refused (invalid_dpop_proof)', async () => {
    const as = await (await fetch(`${t.url}/.well-known/oauth-authorization-server`)).json() as Record<string, string[]>;
    for (const alg of ['ES512', 'PS384', 'RS512']) {
      assert.ok(!as.dpop_signing_alg_values_supported!.includes(alg), `${alg} is not advertised`);
      const { proof } = await proofWith(alg, `${t.url}/auth/token`);
      const res = await tokenRequest(proof);
      assert.equal(res.status, 400, alg);
      assert.equal(res.body.error, 'invalid_dpop_proof', alg);
    }
  });
});
