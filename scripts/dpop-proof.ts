/**
 * Prints one RFC 9449 DPoP proof, for trying DPoP (and MIMIR_DPOP_REQUIRE_NONCE) with curl:
 *
 *   node scripts/dpop-proof.ts METHOD URL [NONCE] [ACCESS_TOKEN]
 *
 * Signed (ES256) by the key in ./dpop-key.json, created (mode 0600) on first use, so every proof of
 * a session is made with the key its tokens are bound to. With ACCESS_TOKEN the proof carries `ath`
 * (RFC 9449 §4.2), as a resource request needs; an empty NONCE leaves the nonce out.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

const KEY_FILE = 'dpop-key.json';
const [htm, htu, nonce, token] = process.argv.slice(2);
if (!htm || !htu) {
  process.stderr.write('usage: node scripts/dpop-proof.ts METHOD URL [NONCE] [ACCESS_TOKEN]\n');
  process.exit(2);
}
if (!existsSync(KEY_FILE)) {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  writeFileSync(KEY_FILE, JSON.stringify(await exportJWK(privateKey)), { mode: 0o600, flag: 'wx' });
}
const jwk = JSON.parse(readFileSync(KEY_FILE, 'utf8')) as JWK;
const { d: _private, ...publicJwk } = jwk;
const claims = {
  htm: htm.toUpperCase(), htu, jti: randomUUID(),
  ...(nonce ? { nonce } : {}),
  ...(token ? { ath: createHash('sha256').update(token).digest('base64url') } : {}),
};
process.stdout.write(await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk }).setIssuedAt().sign(await importJWK(jwk, 'ES256')));
