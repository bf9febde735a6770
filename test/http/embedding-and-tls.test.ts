import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { mimirAuth, mimirAuthExpress } from '../../src/index.ts';
import { serviceAccountToken, startHub, type TestHub } from '../helpers/hub.ts';

describe('embedding the authenticator in Mimir itself', () => {
  let t: TestHub;
  let token: string;
  let viewerKey: string;
  before(async () => {
    t = await startHub({ storage: 'memory' });
    token = (await serviceAccountToken(t, ['developer'])).token;
    viewerKey = (await t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
  });
  after(async () => { await t.close(); });

  it('the Fastify plugin sets req.principal and answers RFC 6750 errors', async () => {
    const app = Fastify();
    await app.register(mimirAuth, { authenticator: t.hub.authenticator, rbac: t.hub.rbac });
    app.get('/api/nodes', { preHandler: app.requireAuth }, async (req) => ({ sub: req.principal!.sub }));
    app.delete('/api/nodes/1', { preHandler: app.requirePermission('nodes:delete') }, async () => ({ deleted: true }));
    try {
      const ok = await app.inject({ url: '/api/nodes', headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.statusCode, 200);
      assert.equal(ok.json().sub, decodeSub(token));
      const none = await app.inject({ url: '/api/nodes' });
      assert.equal(none.statusCode, 401);
      assert.match(String(none.headers['www-authenticate']), /^Bearer realm="mimir"/);
      const denied = await app.inject({ method: 'DELETE', url: '/api/nodes/1', headers: { 'x-api-key': viewerKey } });
      assert.equal(denied.statusCode, 403);
      assert.equal(denied.json().error, 'insufficient_scope');
      const allowed = await app.inject({ method: 'DELETE', url: '/api/nodes/1', headers: { authorization: `Bearer ${token}` } });
      assert.equal(allowed.statusCode, 200);
    } finally {
      await app.close();
    }
  });

  it('the Express middleware sets req.principal and answers RFC 6750 errors', async () => {
    const app = express();
    app.use('/api', mimirAuthExpress({ authenticator: t.hub.authenticator }) as express.RequestHandler);
    app.get('/api/nodes', (req, res) => { res.json({ sub: (req as unknown as { principal: { sub: string } }).principal.sub }); });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const ok = await fetch(`${url}/api/nodes`, { headers: { 'x-api-key': viewerKey } });
      assert.equal(ok.status, 200);
      assert.match(String(((await ok.json()) as { sub: string }).sub), /^api-key:/);
      const bad = await fetch(`${url}/api/nodes`, { headers: { authorization: 'Bearer not.a.jwt' } });
      assert.equal(bad.status, 401);
      assert.equal(((await bad.json()) as { error: string }).error, 'invalid_token');
      assert.match(bad.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

function decodeSub(jwt: string): string {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).sub as string;
}

describe('HTTPS and proxies', () => {
  it('serves TLS itself when MIMIR_TLS_CERT_FILE and MIMIR_TLS_KEY_FILE are set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const { freePort } = await import('../helpers/hub.ts');
    const port = await freePort();
    const { loadConfig } = await import('../../src/config/index.ts');
    const { openHub } = await import('../../src/hub.ts');
    const { buildServer } = await import('../../src/http/server.ts');
    const config = loadConfig({ MIMIR_TOKEN_STORAGE: 'memory', MIMIR_DATA_DIR: dir, MIMIR_TLS_CERT_FILE: join(dir, 'cert.pem'), MIMIR_TLS_KEY_FILE: join(dir, 'key.pem'), MIMIR_AUTH_PORT: String(port), MIMIR_LOG_LEVEL: 'silent', MIMIR_LOG_AUTH_EVENTS: 'false' }, { dotenv: false });
    assert.equal(config.publicUrl, `https://localhost:${port}`, 'the default public URL follows TLS');
    const hub = await openHub(config);
    const app = await buildServer(hub);
    await app.listen({ port, host: '127.0.0.1' });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/health', ca: readFileSync(join(dir, 'cert.pem')) }, (res) => {
          let data = '';
          res.on('data', (d: Buffer) => { data += d.toString(); });
          res.on('end', () => resolve(data));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(JSON.parse(body), { status: 'ok' });
    } finally {
      await app.close();
      await hub.close();
    }
  });

  it('MIMIR_MAX_HEADER_BYTES holds under TLS too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const { freePort } = await import('../helpers/hub.ts');
    const { loadConfig } = await import('../../src/config/index.ts');
    const { openHub } = await import('../../src/hub.ts');
    const { buildServer } = await import('../../src/http/server.ts');
    const status = (port: number, headerBytes: number) => new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/health', ca: readFileSync(join(dir, 'cert.pem')), headers: { 'x-padding': 'p'.repeat(headerBytes) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    for (const [limit, sent, expected] of [[65536, 20_000, 200], [16384, 20_000, 431]] as const) {
      const port = await freePort();
      const config = loadConfig({ MIMIR_TOKEN_STORAGE: 'memory', MIMIR_DATA_DIR: dir, MIMIR_TLS_CERT_FILE: join(dir, 'cert.pem'), MIMIR_TLS_KEY_FILE: join(dir, 'key.pem'), MIMIR_AUTH_PORT: String(port), MIMIR_LOG_LEVEL: 'silent', MIMIR_LOG_AUTH_EVENTS: 'false', MIMIR_MAX_HEADER_BYTES: String(limit) }, { dotenv: false });
      const hub = await openHub(config);
      const app = await buildServer(hub);
      await app.listen({ port, host: '127.0.0.1' });
      try {
        assert.equal(await status(port, sent), expected, `a ${sent}-byte header with MIMIR_MAX_HEADER_BYTES=${limit}`);
      } finally {
        await app.close();
        await hub.close();
      }
    }
  });

  it('X-Forwarded-* are believed only with MIMIR_TRUST_PROXY', async () => {
    for (const trust of ['false', 'true']) {
      const t = await startHub({ storage: 'memory', env: { MIMIR_TRUST_PROXY: trust, MIMIR_LOG_AUTH_EVENTS: 'true', MIMIR_AUDIT_LOG_DESTINATION: 'file' } });
      try {
        await fetch(`${t.url}/auth/me`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
        await t.hub.audit.flush();
        await new Promise((resolve) => setTimeout(resolve, 100));
        const audit = readFileSync(t.config.audit.file, 'utf8');
        const ip = JSON.parse(audit.trim().split('\n').at(-1)!).ip as string;
        assert.equal(ip, trust === 'true' ? '203.0.113.9' : '127.0.0.1', `MIMIR_TRUST_PROXY=${trust}`);
      } finally {
        await t.close();
      }
    }
  });
});
