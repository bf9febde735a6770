/**
 * The seed's "Test 3: PCTX Integration", as a test: a PCTX-shaped MCP gateway configured
 * with the seed's variables (service-account mode) answers `tools/list` with Mimir's tools,
 * reaching Mimir through the hub. And the two auth forms of fixtures/pctx.json work as written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clientOptionsFromEnv, createMimirClient } from '../../src/client/index.ts';
import { mcpClient, startFront, type Front } from './setup.ts';
import { TOOLS } from './upstream.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const PCTX_JSON = fileURLToPath(new URL('../fixtures/pctx.json', import.meta.url));

interface PctxServerEntry { name: string; url: string; auth: { type: string; token?: string; headers?: Record<string, string> } }

/** A PCTX-shaped gateway: JSON-RPC in, answered with an MCP session to Mimir through the client. */
async function startGateway(env: Record<string, string>): Promise<{ url: string; close(): Promise<void> }> {
  const mimir = createMimirClient({ ...clientOptionsFromEnv(env), fromEnv: false });
  const mcp = new Client({ name: 'pctx', version: '0.1.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${mimir.url}/mcp`), { fetch: (url, init) => mimir.fetch(url as string, init) });
  await mcp.connect(transport);
  const server: Server = createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const msg = JSON.parse(text) as { id: number; method: string; params?: { name: string; arguments?: Record<string, unknown> } };
    const result = msg.method === 'tools/list' ? await mcp.listTools() : await mcp.callTool({ name: msg.params!.name, arguments: msg.params!.arguments ?? {} });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await mcp.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('Test 3: PCTX Integration', () => {
  let f: Front;
  let secret: string;
  let home: string;
  before(async () => {
    f = await startFront();
    secret = (await f.t.hub.serviceAccounts.create({ clientId: 'pctx-service', roles: ['developer'] })).clientSecret;
    home = mkdtempSync(join(tmpdir(), 'mimir-home-'));
  });
  after(async () => {
    await f.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('PCTX in service-account mode answers tools/list with Mimir\'s tools (200 OK)', async () => {
    const gateway = await startGateway({
      MIMIR_URL: f.t.url, MIMIR_AUTH_MODE: 'service-account', MIMIR_SERVICE_ACCOUNT_ID: 'pctx-service', MIMIR_SERVICE_ACCOUNT_SECRET: secret,
    });
    try {
      // curl -X POST http://localhost:8080/mcp -H "Content-Type: application/json" -d '{"jsonrpc":"2.0","method":"tools/list","id":1}'
      const res = await fetch(`${gateway.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","method":"tools/list","id":1}' });
      assert.equal(res.status, 200);
      const body = await res.json() as { result: { tools: Array<{ name: string }> } };
      assert.deepEqual(body.result.tools.map((t) => t.name).sort(), [...TOOLS].sort());
      const seen = f.upstream.find('/mcp').at(-1)!.headers;
      assert.equal(seen['x-user-id'], 'service-account:pctx-service');
      assert.equal(seen.authorization, undefined);
    } finally {
      await gateway.close();
    }
  });

  const cli = (args: string[], env: Record<string, string>) => run(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', MIMIR_HOME: home, ...env }, timeout: 60_000,
  });

  it('`mimir-auth token --service-account ID` prints only a valid token, and reuses a fresh one', async () => {
    const env = { MIMIR_URL: f.t.url, MIMIR_SERVICE_ACCOUNT_SECRET: secret };
    const first = await cli(['token', '--service-account', 'pctx-service'], env);
    assert.match(first.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'stdout is the token and nothing else');
    const token = first.stdout.trim();
    const me = await fetch(`${f.t.url}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    assert.equal((await me.json() as { sub: string }).sub, 'pctx-service');
    const cache = join(home, 'service-tokens.json');
    assert.equal(statSync(cache).mode & 0o777, 0o600);
    assert.ok(!readFileSync(cache, 'utf8').includes(secret), 'the secret is never cached');
    const second = await cli(['token', '--service-account', 'pctx-service'], env);
    assert.equal(second.stdout.trim(), token, 'a still-fresh token is reused');
  });

  it('`mimir-auth token` without the secret fails with a message on stderr and nothing on stdout', async () => {
    const r = await cli(['token', '--service-account', 'pctx-service'], { MIMIR_URL: f.t.url }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 64);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /MIMIR_SERVICE_ACCOUNT_SECRET/);
  });

  it('both auth forms of pctx.json reach Mimir\'s tools through the hub', async () => {
    const { servers } = JSON.parse(readFileSync(PCTX_JSON, 'utf8')) as { servers: PctxServerEntry[] };
    const { key: apiKey } = await f.t.hub.apiKeys.create({ name: 'pctx', roles: ['developer'] });
    for (const server of servers) {
      let headers: Record<string, string>;
      if (server.auth.type === 'bearer') {
        // ${command:mimir-auth token --service-account pctx-service}, run as PCTX would.
        const command = /^\$\{command:(.+)\}$/.exec(server.auth.token!)![1]!.split(' ');
        assert.equal(command[0], 'mimir-auth');
        const { stdout } = await cli(command.slice(1), { MIMIR_URL: f.t.url, MIMIR_SERVICE_ACCOUNT_SECRET: secret });
        headers = { authorization: `Bearer ${stdout.trim()}` };
      } else {
        headers = Object.fromEntries(Object.entries(server.auth.headers!).map(([k, v]) => [k, v.replace('${env:MIMIR_API_KEY}', apiKey)]));
      }
      const s = await mcpClient(1, f.t.url, headers);
      try {
        assert.deepEqual(await s.listTools(), [...TOOLS].sort(), server.name);
      } finally {
        await s.close();
      }
    }
  });
});
