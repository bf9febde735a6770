/**
 * MCP messages for the tests of requests under way (src/http/fast-path.ts, src/proxy/routes.ts):
 * a whole POST /mcp through node:http, and one whose body is sent in two parts over a raw socket,
 * so something can happen while it arrives.
 */
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/http/server.ts';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { freePort, serviceAccountToken, startHub, type TestHub } from './hub.ts';

export const MCP_VERSION = '2025-11-25';
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const call = (name: string, id = 1): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
export const init = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: MCP_VERSION, capabilities: {}, clientInfo: { name: 't', version: '1' } } });

export function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { host: 'mimir.example.test', 'content-type': 'application/json', 'mcp-protocol-version': MCP_VERSION, 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = ''; res.setEncoding('utf8'); res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject); req.end(body);
  });
}

/** Sends the head and the first `part` bytes of `body` on a raw socket; `rest()` sends the others. */
export function startPost(port: number, headers: Record<string, string>, body: string, part: number): { socket: Socket; rest: () => boolean; answer: () => string } {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => { received += d; });
  socket.on('error', () => undefined);
  const head = ['POST /mcp HTTP/1.1', 'host: mimir.example.test', 'content-type: application/json', `mcp-protocol-version: ${MCP_VERSION}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${Buffer.byteLength(body)}`, '', ''].join('\r\n');
  socket.write(head + body.slice(0, part));
  return { socket, rest: () => socket.write(body.slice(part)), answer: () => received };
}

/**
 * One hub (Redis) in front of `upstream`, served twice: by its own server (fast path on, `fastPort`)
 * and by a second one over the same hub with the fast path off (`slowPort`, the reference).
 */
export async function servedTwice(upstream: Server): Promise<{ t: TestHub; slow: FastifyInstance; slowPort: number; fastPort: number; close: () => Promise<void> }> {
  const t = await startHub({ storage: 'redis', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` } });
  const slow = await buildServer(t.hub, { fastPath: false });
  const slowPort = await freePort();
  await slow.listen({ port: slowPort, host: '127.0.0.1' });
  return {
    t, slow, slowPort, fastPort: Number(new URL(t.url).port),
    close: async () => { await slow.close(); await t.close(); await new Promise((r) => upstream.close(r)); },
  };
}

/**
 * A stand-in for Mimir: `GET /api/nodes/types` is an event stream, its headers sent after
 * `streamOpensAfterMs`, then a beat every 50 ms until the caller leaves; every `/mcp` message is
 * answered with one shared session id (`tools/list` with one tool, anything else `{ ok: true }`).
 */
export async function mcpUpstream(streamOpensAfterMs = 0): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/api/nodes/types') {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const beat = setInterval(() => res.write('data: beat\n\n'), 50);
        res.on('close', () => clearInterval(beat));
      }, streamOpensAfterMs);
      return;
    }
    const chunks: Buffer[] = []; req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let m: { id?: unknown; method?: string } = {};
      try { m = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* echoed */ }
      const result = m.method === 'tools/list' ? { tools: [{ name: 'memory_node', inputSchema: {} }] } : { ok: true };
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-session' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: m.id ?? null, result }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

/** A fresh service-account token (developer) with an MCP session opened on `port`, warm enough for the fast path. */
export async function warmSession(t: TestHub, port: number): Promise<{ token: string; headers: Record<string, string> }> {
  const { token } = await serviceAccountToken(t, ['developer']);
  const opened = await post(`http://127.0.0.1:${port}/mcp`, { authorization: `Bearer ${token}` }, init);
  const headers = { authorization: `Bearer ${token}`, 'mcp-session-id': String(opened.headers['mcp-session-id']) };
  assert.equal((await post(`http://127.0.0.1:${port}/mcp`, headers, call('memory_node'))).status, 200);
  assert.equal((await post(`http://127.0.0.1:${port}/mcp`, headers, call('memory_node'))).status, 200);
  return { token, headers };
}

/**
 * A `tools/call` whose body is still arriving (10 bytes sent) when `token` is revoked by jti; the
 * rest follows, and the answer has had 300 ms to come. The caller reads it and destroys the socket.
 */
export async function revokedMidBody(t: TestHub, port: number, token: string, headers: Record<string, string>): Promise<ReturnType<typeof startPost>> {
  const p = startPost(port, headers, call('memory_node'), 10);
  await sleep(100);
  const { jti, exp } = decodeJwt(token);
  await t.hub.revocations.revoke('jti', String(jti), Number(exp));
  await sleep(50);
  p.rest();
  await sleep(300);
  return p;
}
