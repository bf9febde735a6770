/**
 * A JWT issuer on loopback with its own JWKS served over HTTP (node:http): what a Kubernetes API
 * server, a SPIFFE trust domain or a client with its own key pair looks like to the hub. Serves
 * `/.well-known/openid-configuration` (issuer, jwks_uri) and `/jwks`; signs with its key (jose),
 * or with a key that is not in its JWKS (`{ key: 'stranger' }`), or with a shared secret
 * (`{ key: 'hmac' }`), or unsigned (`alg: none`, `{ key: 'none' }`), for the attacks.
 */
import { createServer, type Server } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, exportPKCS8, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { freePort } from './hub.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

export interface SignOptions {
  /** Header `typ` (none by default). */
  typ?: string;
  /** Which key signs: the published one (default), one not published, an HMAC secret, or none at all. */
  key?: 'published' | 'stranger' | 'hmac' | 'none';
  /** Seconds from now until `exp` (default 300; negative: already expired). `null`: no exp. */
  expiresIn?: number | null;
  /** Leave these registered claims out (`jti`, `iat`, ...). */
  omit?: string[];
}

export interface JwtIssuer {
  /** `iss` of its tokens: its origin. */
  issuer: string;
  jwksUri: string;
  /** Its public JWK Set (what a client registers as `jwks`). */
  jwks: { keys: JWK[] };
  alg: string;
  /** Its current private key as PKCS#8 PEM (what the MCP SDK's PrivateKeyJwtProvider takes). */
  privateKeyPem: string;
  /** How many times `/jwks` was fetched. */
  jwksRequests: number;
  /** A signed JWT: `iss` = issuer, `iat` now, a fresh `jti`, `exp` in 5 minutes, then `claims` over them. */
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
  /** Replaces the published key by a new one (a key rotation). */
  rotate(): Promise<void>;
  close(): Promise<void>;
}

export async function startJwtIssuer(options: { alg?: 'ES256' | 'RS256' | 'EdDSA'; port?: number } = {}): Promise<JwtIssuer> {
  const alg = options.alg ?? 'ES256';
  const newKey = async () => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomBytes(6).toString('hex');
    return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } as JWK };
  };
  let key = await newKey();
  const stranger = await newKey();
  const hmac = new TextEncoder().encode(randomBytes(32).toString('hex'));
  const port = options.port ?? await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const state = { jwksRequests: 0, pem: await exportPKCS8(key.privateKey) };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: [alg] }));
    } else if (path === '/jwks') {
      state.jwksRequests++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify({ keys: [key.jwk] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    get jwks() { return { keys: [key.jwk] }; },
    alg,
    get privateKeyPem() { return state.pem; },
    get jwksRequests() { return state.jwksRequests; },
    async sign(claims, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const base: JWTPayload = { iss: issuer, iat: now, jti: randomUUID(), ...(o.expiresIn === null ? {} : { exp: now + (o.expiresIn ?? 300) }) };
      const payload: JWTPayload = { ...base, ...claims };
      for (const name of o.omit ?? []) delete payload[name];
      const typ = o.typ ? { typ: o.typ } : {};
      if (o.key === 'none') {
        const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
        return `${enc({ alg: 'none', ...typ })}.${enc(payload)}.`;
      }
      if (o.key === 'hmac') return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: key.kid, ...typ }).sign(hmac);
      // A stranger's key under the published kid: the key is found, the signature does not verify.
      const signer = o.key === 'stranger' ? stranger : key;
      return new SignJWT(payload).setProtectedHeader({ alg, kid: key.kid, ...typ }).sign(signer.privateKey as PrivateKey);
    },
    async rotate() {
      key = await newKey();
      state.pem = await exportPKCS8(key.privateKey);
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
