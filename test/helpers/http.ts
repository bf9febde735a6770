/** Small helpers shared by the token-lifecycle tests. */
import { randomBytes, createHash } from 'node:crypto';
import { exportJWK, generateKeyPair, calculateJwkThumbprint, SignJWT, type JWK } from 'jose';
import type { TestHub } from './hub.ts';
import type { RefreshGrant } from '../../src/oauth/refresh/refresh-tokens.ts';

export interface Reply {
  status: number;
  body: Record<string, any>;
  headers: Headers;
}

async function read(res: Response): Promise<Reply> {
  const text = await res.text();
  let body: Record<string, any>;
  try { body = text ? JSON.parse(text) : {}; } catch { body = { text }; }
  return { status: res.status, body, headers: res.headers };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return read(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }));
}

export async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Reply> {
  return read(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() }));
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return read(await fetch(url, { headers }));
}

export function basic(clientId: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}` };
}

/** A login as the sign-in feature would start it: a public client's refresh token family. */
export async function login(t: TestHub, grant: Partial<RefreshGrant> = {}): Promise<string> {
  const issued = await t.hub.refreshTokens.issue({
    sub: `user-${randomBytes(3).toString('hex')}`, clientId: 'mimir-cli', scope: 'nodes:read search:execute', roles: ['analyst'],
    email: 'ada@example.com', publicClient: true, ...grant,
  });
  return issued.token;
}

export interface DpopKey {
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
  jkt: string;
}

export async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
}

/** RFC 9449 §4.2 proof. */
export async function dpopProof(key: DpopKey, claims: { htm: string; htu: string; accessToken?: string; jti?: string; iat?: number }): Promise<string> {
  const payload: Record<string, unknown> = { htm: claims.htm, htu: claims.htu, jti: claims.jti ?? randomBytes(12).toString('base64url') };
  if (claims.accessToken) payload.ath = createHash('sha256').update(claims.accessToken).digest('base64url');
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .setIssuedAt(claims.iat ?? Math.floor(Date.now() / 1000))
    .sign(key.privateKey);
}
