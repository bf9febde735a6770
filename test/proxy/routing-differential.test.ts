/**
 * Issue 15, "find the next ones by machine": a differential property test of routing. For
 * generated request targets (case, dot segments, doubled slashes, percent-encodings, fragments,
 * query tricks, unicode), the route and MCP tool the hub authorizes are exactly what an Express 5
 * app shaped like Mimir's router dispatches to — or the hub refuses the request.
 *
 * How it is observed: the hub's route table and the Express app are built from the same list
 * (Mimir's routes, ../shared/fixtures/mimir-http-surface.json, copied to test/fixtures), each
 * route needing a permission of its own (`route:<n>`). Each generated request is sent with an
 * API key whose role grants one route's permission (and one MCP tool), so a request the hub
 * forwards was authorized as that route; the Express app records which route it dispatched to
 * (and which tool it was asked to run), and the target it received.
 *
 * Runs: ROUTING_RUNS (default 1500) cases in `npm test`; `ROUTING_RUNS=50000 node --test
 * test/proxy/routing-differential.test.ts` for a long run. A failure prints fast-check's
 * seed and the shrunk target.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import fc from 'fast-check';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { rawRequest } from '../helpers/raw-http.ts';

interface SurfaceRoute { method: string; path: string }
const surface = JSON.parse(readFileSync(new URL('../fixtures/mimir-http-surface.json', import.meta.url), 'utf8')) as { routes: SurfaceRoute[] };
/** Mimir's routes that reach it through the hub (the hub's own namespaces and Mimir's SPA catch-all aside). */
const ROUTES = surface.routes.filter((r) => !/^\/(auth|health)(\/|$)/.test(r.path) && r.path.startsWith('/') && !r.path.includes('<'));
const RUNS = Number(process.env.ROUTING_RUNS ?? 1500);
const ALLOWED_TOOL = 'memory_search';
const TOOLS = [ALLOWED_TOOL, 'memory_node', 'Memory_Search', 'memory_search ', ''];

interface Dispatched { route: number | null; target: string; tool?: unknown }

/** Express 5, routed as Mimir's server is (case-insensitive, trailing slash ignored: Express's defaults). */
async function startMimirShaped(): Promise<{ url: string; log: Dispatched[]; server: Server }> {
  const app = express();
  const log: Dispatched[] = [];
  app.use(express.json({ limit: '1mb' }));
  ROUTES.forEach((r, n) => {
    const method = r.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
    app[method](r.path, (req, res) => {
      const body = req.body as { method?: unknown; params?: { name?: unknown } } | undefined;
      const tool = r.path === '/mcp' && body?.method === 'tools/call' ? body.params?.name : undefined;
      log.push({ route: n, target: req.originalUrl, ...(tool !== undefined ? { tool } : {}) });
      res.json({ jsonrpc: '2.0', id: 1, result: { route: n } });
    });
  });
  app.use((req, res) => {
    log.push({ route: null, target: req.originalUrl });
    res.status(404).json({ route: null });
  });
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, log, server };
}

/** A route path with its parameters filled in. */
const concretePath = (route: SurfaceRoute) => fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/), { minLength: 6, maxLength: 6 })
  .map((values) => { let i = 0; return route.path.replace(/:[A-Za-z]+/g, () => values[i++]!); });

const SPECIAL = ['/', '.', '..', '\\', '#', '?', '%', ';', '%2f', '%2F', '%2e', '%2E', '%5c', '%00', '%25', '%41', '%6e', 'é', '\u212a', '\u0130', 'ı', '\uff0f', ' '];

/** Mutations of a target: each a function of the string and a position. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('case' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...SPECIAL, '//', '/./', '/../', '/.', '/..', '#x', '?a=b', '?a=/../mcp', '??', '?#', '&') }),
  fc.record({ kind: fc.constant('encode' as const), at: fc.nat(), lower: fc.boolean() }),
  fc.record({ kind: fc.constant('trailing' as const), text: fc.constantFrom('/', '//', '#', '#frag', '?', '?x=1', '/?x', '.json', '%20') }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function apply(target: string, m: Mutation): string {
  if (m.kind === 'trailing') return target + m.text;
  const at = 1 + (m.at % Math.max(1, target.length));
  if (m.kind === 'case') return target.slice(0, at - 1) + flip(target[at - 1]!) + target.slice(at);
  if (m.kind === 'insert') return target.slice(0, at) + m.text + target.slice(at);
  const ch = target[at - 1]!;
  const hex = ch.charCodeAt(0).toString(16).padStart(2, '0');
  return ch.charCodeAt(0) < 0x80 ? target.slice(0, at - 1) + `%${m.lower ? hex : hex.toUpperCase()}` + target.slice(at) : target;
}

const flip = (c: string) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());

describe('routing: the hub authorizes exactly what Express dispatches, or refuses', () => {
  let hub: TestHub;
  let mimir: Awaited<ReturnType<typeof startMimirShaped>>;
  const keys: string[] = [];

  before(async () => {
    mimir = await startMimirShaped();
    const roleMappings: Record<string, { permissions: string[] }> = {};
    ROUTES.forEach((_r, n) => { roleMappings[`route-${n}`] = { permissions: [`route:${n}`, `mcp:tool:${ALLOWED_TOOL}`] }; });
    const routes = [
      ...ROUTES.map((r, n) => ({ method: r.method === 'GET' ? 'GET|HEAD' : r.method, path: r.path.replace(/:[A-Za-z]+/g, '*'), permission: `route:${n}` })),
      { method: '*', path: '/**', permission: 'upstream:access' },
    ];
    hub = await startHub({
      storage: 'memory',
      env: { MIMIR_UPSTREAM_URL: mimir.url, MIMIR_RBAC_CONFIG: JSON.stringify({ version: '1.0', claimPath: 'roles', roleMappings, routes }) },
    });
    for (let n = 0; n < ROUTES.length; n++) keys.push((await hub.hub.apiKeys.create({ name: `route-${n}`, roles: [`route-${n}`] })).key);
  });
  after(async () => {
    await hub.close();
    mimir.server.closeAllConnections();
    await new Promise((resolve) => mimir.server.close(resolve));
  });

  it(`${RUNS} generated targets: forwarded only as the route (and MCP tool) the hub authorized, and verbatim`, async () => {
    const cases = fc.integer({ min: 0, max: ROUTES.length - 1 }).chain((n) => fc.record({
      n: fc.constant(n),
      path: concretePath(ROUTES[n]!),
      mutations: fc.array(mutation, { maxLength: 4 }),
      tool: fc.constantFrom(...TOOLS),
      as: fc.oneof(fc.constant(n), fc.integer({ min: 0, max: ROUTES.length - 1 })),
    }));
    await fc.assert(fc.asyncProperty(cases, async (c) => {
      const route = ROUTES[c.n]!;
      const target = c.mutations.reduce(apply, c.path);
      // Targets a client could not even write on the wire (spaces, controls) are the HTTP parser's business;
      // non-ASCII goes out as UTF-8 bytes, as a careless client would send it.
      if ([...target].some((ch) => ch <= ' ' || ch === '\x7f')) return;
      const body = route.path === '/mcp' ? JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: c.tool, arguments: {} } }) : '{}';
      const before = mimir.log.length;
      const answer = await rawRequest(hub.url, {
        method: route.method, target,
        headers: [['X-API-Key', keys[c.as]!], ['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream']],
        ...(route.method === 'GET' ? {} : { body }),
      });
      const reached = mimir.log.slice(before);
      assert.ok(reached.length <= 1, 'one request upstream at most');
      const seen = reached[0];
      if (seen === undefined) {
        // Refused by the hub (or by Node's HTTP parser): never a 5xx.
        assert.ok(answer.status < 500 || Number.isNaN(answer.status), `${route.method} ${target} → ${answer.status}`);
        return;
      }
      // Forwarded: only as the route the key's role allows, and exactly as sent.
      assert.equal(seen.route, c.as, `${route.method} ${target}: the hub authorized route ${c.as} (${ROUTES[c.as]!.method} ${ROUTES[c.as]!.path}), Express dispatched to ${seen.route === null ? 'no route' : `${ROUTES[seen.route]!.method} ${ROUTES[seen.route]!.path}`}`);
      assert.equal(seen.target, target, 'forwarded verbatim');
      if (seen.tool !== undefined) assert.equal(seen.tool, ALLOWED_TOOL, `${target}: only the tool the key may call runs`);
    }), { numRuns: RUNS });
  });
});
