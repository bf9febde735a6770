/**
 * Checks the real Mimir against the facts the hub is built on (test/fixtures/mimir-http-surface.json,
 * read from Mimir's source at commit 01c0203). Starts Mimir three times through run.ts (builds it
 * first if needed), on free loopback ports:
 *
 *   A  security off          each of the facts' routes once: status, and whether the answer shows
 *                            the route exists (compared with a made-up path: Express's own
 *                            "Cannot <METHOD> <path>" 404 means no route); Express routing quirks;
 *                            the first non-initialize POST /mcp rewritten into an initialize
 *   B  security on           MCP sessions (two principals initialize; another session id), the
 *                            credential channels, token checks, GET /auth/status, and each route
 *                            without a credential (401 exactly where the facts say the gate is)
 *   C  security + RBAC on    Mimir's own permission checks
 *
 *   node scripts/real-mimir/probe.ts [--facts path] [--json out.json]
 *
 * Prints the route table and every check (expected per the facts, observed, OK or DIFF); exits 1
 * when any check differs.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { SignJWT, base64url } from 'jose';
import { startRealMimir, type RealMimir } from './run.ts';

interface FactRoute { method: string; path: string; streaming: boolean | string; permission: string | null }
interface Facts { about: string; route_count: number; routes: FactRoute[]; mcp: { session_id: string; tools: string[]; server_info: { name: string; version: string } } }

const argv = process.argv.slice(2);
const option = (name: string) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : undefined; };
const factsPath = option('--facts') ?? new URL('../../test/fixtures/mimir-http-surface.json', import.meta.url).pathname;
const jsonOut = option('--json');
const facts = JSON.parse(readFileSync(factsPath, 'utf8')) as Facts;
const SESSION = facts.mcp.session_id;
const SECRET = randomBytes(32).toString('base64url');
const log = (m: string) => console.log(`[probe] ${m}`);

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/**
 * One request on its own connection with exactly the headers given (node:http adds Host and
 * Connection: close). A text/event-stream answer is read for 300 ms and then
 * closed: only its status and headers matter. A network error is an answer with status 0.
 */
function send(base: string, method: string, target: string, options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  const url = new URL(target, base);
  const payload = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  // Content-Length always: node:http sends a DELETE body without one, which a server then reads
  // as the start of the next request.
  const framing: Record<string, string> = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
  const headers: Record<string, string> = { ...framing, ...options.headers };
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, timeout: 20_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      res.on('error', done);
      if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        setTimeout(() => { res.destroy(); done(); }, 300);
      } else {
        res.on('end', done);
      }
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: no answer in 20 s`)));
    req.on('error', (error) => resolve({ status: 0, headers: {}, body: `network error: ${error.message}` }));
    req.end(payload);
  });
}

const json = (a: Answer): any => { try { return JSON.parse(a.body); } catch { return undefined; } };
const short = (a: Answer, n = 70) => `${a.status} ${a.body.replace(/\s+/g, ' ').trim().slice(0, n)}`;
/** Express's final handler: no route matched this method and path. */
const noRoute = (a: Answer) => a.status === 404 && /Cannot [A-Z]+ \//.test(a.body);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Tokens: HS256 with MIMIR_JWT_SECRET as UTF-8 bytes, as Mimir's jsonwebtoken verify reads it
// ---------------------------------------------------------------------------------------------

async function token(claims: Record<string, unknown>, options: { secret?: string; alg?: string } = {}): Promise<string> {
  const key = new TextEncoder().encode(options.secret ?? SECRET);
  return new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' }).setIssuedAt().sign(key);
}
function unsignedToken(claims: Record<string, unknown>): string {
  const part = (v: unknown) => base64url.encode(JSON.stringify(v));
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

interface Check { area: string; what: string; expected: string; observed: string; ok: boolean }
const checks: Check[] = [];
function check(area: string, what: string, expected: string, observed: string, ok: boolean): void {
  checks.push({ area, what, expected, observed, ok });
}

interface Row { n: number; method: string; path: string; target: string; off: string; exists: boolean; gate: boolean; on: string; gateOk: boolean }
const rows: Row[] = [];

/** A request target for a route of the facts: parameters filled, the SPA catch-all given a page. */
function targetOf(r: FactRoute): string {
  if (r.path.startsWith('/<')) return '/probe-spa-page';
  return r.path.replace(/:([A-Za-z]+)/g, (_m, name: string) => `probe-${name.toLowerCase()}`);
}
/** Body sent with a route: empty JSON object, except POST /mcp (a JSON-RPC message). */
function bodyOf(r: FactRoute): unknown {
  if (r.path === '/mcp' && r.method === 'POST') return { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
  return ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) ? {} : undefined;
}
const MCP_ACCEPT = { accept: 'application/json, text/event-stream' };
function headersOf(r: FactRoute): Record<string, string> {
  if (r.path === '/mcp') return r.method === 'GET' ? { accept: 'text/event-stream', 'mcp-session-id': SESSION } : MCP_ACCEPT;
  return {};
}
/** Per the facts (credentials.checked_when): /api/* except /api/health, and POST /mcp. */
const gated = (r: FactRoute) => (r.path.startsWith('/api/') || r.path === '/api') || (r.path === '/mcp' && r.method === 'POST');

// ---------------------------------------------------------------------------------------------
// A: security off
// ---------------------------------------------------------------------------------------------

async function securityOff(m: RealMimir): Promise<void> {
  const u = m.url;
  // Controls: made-up paths under each prefix answer with Express's own 404.
  for (const [method, target] of [['GET', '/api/probe-no-such-route'], ['POST', '/api/probe-no-such-route'], ['DELETE', '/api/nodes'], ['GET', '/v1/probe-no-such-route'], ['GET', '/auth/probe-no-such-route'], ['GET', '/mcpprobe'], ['PUT', '/mcp']] as const) {
    const a = await send(u, method, target, method === 'GET' ? {} : { body: {} });
    check('control', `${method} ${target} (made up)`, 'Express 404 "Cannot <METHOD> <path>"', short(a), noRoute(a));
  }

  for (const [n, r] of facts.routes.entries()) {
    const target = targetOf(r);
    const a = await send(u, r.method, target, { headers: headersOf(r), body: bodyOf(r) });
    rows.push({ n, method: r.method, path: r.path, target, off: short(a, 50), exists: !noRoute(a), gate: gated(r), on: '', gateOk: false });
    if (r.path === '/mcp' && r.method === 'POST') {
      const result = json(a)?.result;
      check('mcp', 'first POST /mcp is not initialize (tools/list): rewritten into an initialize',
        'answer is an initialize result; Mcp-Session-Id: shared-global-session', `${a.status} protocolVersion=${result?.protocolVersion} serverInfo=${JSON.stringify(result?.serverInfo)} session=${a.headers['mcp-session-id']}`,
        a.status === 200 && typeof result?.protocolVersion === 'string' && a.headers['mcp-session-id'] === SESSION);
    }
  }

  const health = await send(u, 'GET', '/health');
  const hb = json(health);
  check('routes', 'GET /health body', '{status, version, mode: shared-session, tools}', short(health, 120),
    health.status === 200 && hb?.mode === 'shared-session' && typeof hb?.tools === 'number' && 'status' in hb && 'version' in hb);
  check('routes', 'GET /health tools count', `${facts.mcp.tools.length} (facts.mcp.tools)`, String(hb?.tools), hb?.tools === facts.mcp.tools.length);

  const upper = await send(u, 'GET', '/API/NODES/TYPES');
  check('express', 'routing is case-insensitive: GET /API/NODES/TYPES', 'same answer as /api/nodes/types (200)', short(upper), upper.status === 200);
  const slash = await send(u, 'GET', '/api/nodes/types/');
  check('express', 'trailing slash ignored: GET /api/nodes/types/', '200', short(slash), slash.status === 200);
  const del = await send(u, 'DELETE', '/mcp', { headers: { 'mcp-session-id': SESSION } });
  check('mcp', 'DELETE /mcp', 'not routed (Express 404)', short(del), noRoute(del));
  const st = await send(u, 'GET', '/auth/status');
  check('auth/status', 'GET /auth/status, security off', '{"authenticated":true,"securityEnabled":false}', short(st, 120),
    json(st)?.authenticated === true && json(st)?.securityEnabled === false);
  const bind = new URL(u).hostname;
  check('runner', 'Mimir listens on', '127.0.0.1 only (loopback.ts; Mimir itself listens on all interfaces)', bind, bind === '127.0.0.1');
}

// ---------------------------------------------------------------------------------------------
// B: security on
// ---------------------------------------------------------------------------------------------

async function mcpSessions(u: string, alice: string, bob: string): Promise<void> {
  const init = (name: string) => ({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name, version: '1' } } });
  const first = await send(u, 'POST', '/mcp', { headers: { ...MCP_ACCEPT, authorization: `Bearer ${alice}` }, body: init('client-alice') });
  const second = await send(u, 'POST', '/mcp', { headers: { ...MCP_ACCEPT, authorization: `Bearer ${bob}` }, body: init('client-bob') });
  const f = json(first)?.result;
  const s = json(second)?.result;
  check('mcp', 'initialize by alice (first client)', `200, Mcp-Session-Id: ${SESSION}`, `${first.status}, ${first.headers['mcp-session-id']}`, first.status === 200 && first.headers['mcp-session-id'] === SESSION);
  check('mcp', 'initialize by bob (second client, other principal)', `200, Mcp-Session-Id: ${SESSION} (the same)`, `${second.status}, ${second.headers['mcp-session-id']}`, second.status === 200 && second.headers['mcp-session-id'] === SESSION);
  check('mcp', 'first initialize answered by the SDK', `serverInfo ${JSON.stringify(facts.mcp.server_info)} + sessionId, sessionMode shared-global`,
    `protocolVersion=${f?.protocolVersion} serverInfo=${JSON.stringify(f?.serverInfo)}`, f?.serverInfo?.name === facts.mcp.server_info.name && f?.serverInfo?.sessionId === SESSION);
  const cached = { protocolVersion: '2024-11-05', capabilities: { tools: {} }, serverInfo: { ...facts.mcp.server_info, sessionId: SESSION, sessionMode: 'shared-global' } };
  check('mcp', 'later initialize gets Mimir\'s cached answer', JSON.stringify(cached), JSON.stringify(s), JSON.stringify(s) === JSON.stringify(cached));

  const list = (headers: Record<string, string>) => send(u, 'POST', '/mcp', { headers: { ...MCP_ACCEPT, authorization: `Bearer ${bob}`, ...headers }, body: { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} } });
  const withSession = await list({ 'mcp-session-id': SESSION });
  const tools: string[] = (json(withSession)?.result?.tools ?? []).map((t: { name: string }) => t.name);
  check('mcp', `tools/list with Mcp-Session-Id: ${SESSION}`, '200', `${withSession.status}, ${tools.length} tools`, withSession.status === 200);
  const sorted = (names: string[]) => [...names].sort().join(',');
  check('mcp', 'tool names (as a set)', sorted(facts.mcp.tools), sorted(tools), sorted(tools) === sorted(facts.mcp.tools));
  check('mcp', 'tools/list order (information: the facts list makes no claim of order)', 'any', tools.join(','), true);
  const without = await list({});
  check('mcp', 'tools/list without Mcp-Session-Id', `200 (${SESSION} injected), header ${SESSION}`, `${without.status}, ${without.headers['mcp-session-id']}`, without.status === 200 && without.headers['mcp-session-id'] === SESSION);
  const other = await list({ 'mcp-session-id': 'some-other-session' });
  check('mcp', 'tools/list with another session id', '404 Session not found', short(other, 120), other.status === 404 && /Session not found/i.test(other.body));

  const sse = await send(u, 'GET', '/mcp', { headers: { accept: 'text/event-stream', 'mcp-session-id': SESSION } });
  check('mcp', 'GET /mcp with no credential, security on', 'not checked: 200 text/event-stream', `${sse.status} ${sse.headers['content-type']}`, sse.status === 200 && String(sse.headers['content-type']).startsWith('text/event-stream'));
  const sseOther = await send(u, 'GET', '/mcp', { headers: { accept: 'text/event-stream', 'mcp-session-id': 'some-other-session' } });
  check('mcp', 'GET /mcp with another session id', '404 Session not found', short(sseOther, 120), sseOther.status === 404);
  const noCred = await send(u, 'POST', '/mcp', { headers: MCP_ACCEPT, body: { jsonrpc: '2.0', id: 7, method: 'tools/list' } });
  check('credentials', 'POST /mcp with no credential', '401 JSON-RPC error -32001', short(noCred, 120), noCred.status === 401 && json(noCred)?.error?.code === -32001);
  const basic = await send(u, 'POST', '/mcp', { headers: { ...MCP_ACCEPT, authorization: 'Basic Zm9vOmJhcg==' }, body: { jsonrpc: '2.0', id: 8, method: 'tools/list' } });
  check('credentials', 'POST /mcp with Authorization: Basic (no other credential)', 'served unauthenticated: 200 tools/list', short(basic), basic.status === 200 && Array.isArray(json(basic)?.result?.tools));
}

async function credentials(u: string, valid: string): Promise<void> {
  const wrong = await token({ sub: 'mallory', email: 'm@example.test', roles: ['admin'] }, { secret: 'not-the-secret-'.repeat(3) });
  // GET /api/keys answers 401 {"error":"Unauthorized"} from its handler when req.user is unset, and
  // {"keys":[]} (the stub has no records) for an authenticated caller: it shows who Mimir saw.
  const channels: [string, (t: string) => { target: string; headers: Record<string, string> }][] = [
    ['Authorization: Bearer', (t) => ({ target: '/api/keys', headers: { authorization: `Bearer ${t}` } })],
    ['X-API-Key', (t) => ({ target: '/api/keys', headers: { 'x-api-key': t } })],
    ['cookie mimir_oauth_token', (t) => ({ target: '/api/keys', headers: { cookie: `mimir_oauth_token=${t}` } })],
    ['?access_token=', (t) => ({ target: `/api/keys?access_token=${t}`, headers: {} })],
    ['?api_key=', (t) => ({ target: `/api/keys?api_key=${t}`, headers: {} })],
  ];
  for (const [name, make] of channels) {
    const ok = make(valid);
    const a = await send(u, 'GET', ok.target, { headers: ok.headers });
    check('credentials', `valid HS256 token via ${name}`, 'honoured: 200 {"keys":[]} (authenticated)', short(a), a.status === 200 && Array.isArray(json(a)?.keys));
    const bad = make(wrong);
    const b = await send(u, 'GET', bad.target, { headers: bad.headers });
    check('credentials', `token signed with another secret via ${name}`, '401 {"error":"Invalid token"}', short(b), b.status === 401 && json(b)?.error === 'Invalid token');
  }
  const none = await send(u, 'GET', '/api/keys');
  check('credentials', 'no credential on /api/keys', '401 {"error":"Unauthorized","message":"Authentication required"}', short(none, 120),
    none.status === 401 && json(none)?.message === 'Authentication required');
  for (const scheme of ['Basic Zm9vOmJhcg==', 'Token abc', 'bearer lowercase-scheme']) {
    const open = await send(u, 'GET', '/api/nodes/types', { headers: { authorization: scheme } });
    check('credentials', `Authorization: ${scheme.split(' ')[0]} … on GET /api/nodes/types`, 'passes the gate, served: 200', short(open), open.status === 200);
    const who = await send(u, 'GET', '/api/keys', { headers: { authorization: scheme } });
    check('credentials', `Authorization: ${scheme.split(' ')[0]} … on GET /api/keys`, 'no req.user: 401 {"error":"Unauthorized"} from the handler', short(who), who.status === 401 && json(who)?.error === 'Unauthorized' && !json(who)?.message);
  }
  const both = await send(u, 'GET', '/api/keys', { headers: { authorization: `Bearer ${wrong}`, 'x-api-key': valid } });
  check('credentials', 'invalid Bearer + valid X-API-Key', 'Bearer read first: 401 Invalid token', short(both), both.status === 401);
  const basicPlusKey = await send(u, 'GET', '/api/keys', { headers: { authorization: 'Basic Zm9vOmJhcg==', 'x-api-key': valid } });
  check('credentials', 'Authorization: Basic + valid X-API-Key', 'X-API-Key used: 200', short(basicPlusKey), basicPlusKey.status === 200);

  const now = Math.floor(Date.now() / 1000);
  const variants: [string, string, boolean][] = [
    ['no exp claim', await token({ sub: 'u', email: 'u@example.test', roles: ['viewer'] }), true],
    ['exp in the past', await token({ sub: 'u', exp: now - 60 }), false],
    ['nbf in the future', await token({ sub: 'u', nbf: now + 3600 }), false],
    ['any iss and aud', await token({ sub: 'u', iss: 'https://elsewhere.example', aud: 'someone-else' }), true],
    ['no sub, no roles', await token({}), true],
    ['HS512 with the same secret', await token({ sub: 'u' }, { alg: 'HS512' }), false],
    ['alg none', unsignedToken({ sub: 'u', roles: ['admin'] }), false],
  ];
  for (const [what, t, accepted] of variants) {
    const a = await send(u, 'GET', '/api/keys', { headers: { authorization: `Bearer ${t}` } });
    check('jwt', `token with ${what}`, accepted ? 'accepted (200)' : 'rejected (401)', short(a), accepted ? a.status === 200 : a.status === 401);
  }
  for (const [target, expected] of [['/v1/models', 'not checked'], ['/models', 'not checked'], ['/health', 'not checked'], ['/api/health', 'gate skips /api/health: Express 404']] as const) {
    const a = await send(u, 'GET', target);
    check('credentials', `GET ${target} with no credential`, expected, short(a), target === '/api/health' ? noRoute(a) : a.status !== 401);
  }
}

async function authStatus(u: string, valid: string): Promise<void> {
  const cases: [string, Record<string, string>, (b: any) => boolean, string][] = [
    ['no credential', {}, (b) => b?.authenticated === false, '{"authenticated":false}'],
    ['valid token in cookie mimir_oauth_token', { cookie: `mimir_oauth_token=${valid}` }, (b) => b?.authenticated === true && b?.user?.id === 'alice' && b?.user?.username === 'alice@example.test', '{"authenticated":true,"user":{id,email,username=email,roles}}'],
    ['valid token as Bearer only', { authorization: `Bearer ${valid}` }, (b) => b?.authenticated === false, 'cookie only: {"authenticated":false}'],
    ['garbage cookie', { cookie: 'mimir_oauth_token=garbage' }, (b) => b?.authenticated === false && b?.error === 'Invalid token', '{"authenticated":false,"error":"Invalid token"}'],
  ];
  for (const [what, headers, ok, expected] of cases) {
    const a = await send(u, 'GET', '/auth/status', { headers });
    check('auth/status', `GET /auth/status, security on, ${what}`, expected, short(a, 160), a.status === 200 && ok(json(a)));
  }
}

async function securityOn(m: RealMimir): Promise<void> {
  const alice = await token({ sub: 'alice', email: 'alice@example.test', roles: ['admin'] });
  const bob = await token({ sub: 'bob', email: 'bob@example.test', roles: ['viewer'] });
  await mcpSessions(m.url, alice, bob);
  await credentials(m.url, alice);
  await authStatus(m.url, alice);
  for (const row of rows) {
    const r = facts.routes[row.n]!;
    const a = await send(m.url, r.method, row.target, { headers: headersOf(r), body: bodyOf(r) });
    row.on = short(a, 40);
    const is401 = a.status === 401;
    const shape = r.path === '/mcp' ? json(a)?.error?.code === -32001 : json(a)?.message === 'Authentication required';
    row.gateOk = row.gate ? is401 && shape : !is401;
  }
}

// ---------------------------------------------------------------------------------------------
// C: security and RBAC on (config/rbac.json of Mimir)
// ---------------------------------------------------------------------------------------------

async function rbac(m: RealMimir): Promise<void> {
  const u = m.url;
  const as = async (roles: string[] | undefined) => `Bearer ${await token({ sub: 'r', email: 'r@example.test', ...(roles ? { roles } : {}) })}`;
  const viewer = await as(['viewer']);
  const admin = await as(['admin']);
  const noRoles = await as(undefined);
  const cases: [string, string, string, Record<string, string>, string, (a: Answer) => boolean][] = [
    ['viewer', 'GET', '/api/nodes/types', { authorization: viewer }, '200 (nodes:read)', (a) => a.status === 200],
    ['viewer', 'DELETE', '/api/nodes/probe-id', { authorization: viewer }, '403 Permission denied: nodes:delete required', (a) => a.status === 403 && json(a)?.message === 'Permission denied: nodes:delete required' && Array.isArray(json(a)?.userRoles)],
    ['viewer', 'GET', '/api/rbac', { authorization: viewer }, '403 (admin)', (a) => a.status === 403],
    ['viewer', 'POST', '/api/keys/generate', { authorization: viewer }, '403 (keys:write)', (a) => a.status === 403],
    ['admin', 'GET', '/api/rbac', { authorization: admin }, 'not 401/403 (admin has *)', (a) => a.status !== 401 && a.status !== 403],
    ['no roles claim', 'DELETE', '/api/nodes/probe-id', { authorization: noRoles }, '403 (default viewer)', (a) => a.status === 403],
    ['viewer', 'POST', '/api/execute-workflow', { authorization: viewer }, 'no own check: served (400 for the empty body), not 403', (a) => a.status === 400],
    ['viewer', 'POST', '/api/index-folder', { authorization: viewer }, 'no own check: served (400), not 403', (a) => a.status === 400],
    ['Basic', 'GET', '/api/nodes/types', { authorization: 'Basic Zm9vOmJhcg==' }, 'requirePermission without req.user: 401', (a) => a.status === 401],
    ['Basic', 'GET', '/api/agents', { authorization: 'Basic Zm9vOmJhcg==' }, 'no own check: served unauthenticated (200)', (a) => a.status === 200],
  ];
  for (const [who, method, target, headers, expected, ok] of cases) {
    const a = await send(u, method, target, { headers, body: method === 'GET' ? undefined : {} });
    check('rbac', `${who}: ${method} ${target}`, expected, short(a, 110), ok(a));
  }
  const call = await send(u, 'POST', '/mcp', { headers: { ...MCP_ACCEPT, authorization: viewer }, body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'v', version: '1' } } } });
  const tool = await send(u, 'POST', '/mcp', { headers: { ...MCP_ACCEPT, authorization: viewer, 'mcp-session-id': SESSION }, body: { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_folders', arguments: {} } } });
  check('rbac', 'viewer: tools/call list_folders over POST /mcp', 'no per-tool check: a tool result', `${call.status}/${short(tool, 100)}`, tool.status === 200 && json(tool)?.result !== undefined);
}

// ---------------------------------------------------------------------------------------------

function table(headers: string[], lines: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

async function withMimir(label: string, options: { security: boolean; rbac?: boolean }, body: (m: RealMimir) => Promise<void>): Promise<string> {
  const port = await freePort();
  log(`${label}: starting Mimir on 127.0.0.1:${port} (security ${options.security ? 'on' : 'off'}${options.rbac ? ', rbac on' : ''})`);
  const m = await startRealMimir({ port, security: options.security, rbac: options.rbac ?? false, jwtSecret: SECRET });
  try {
    await body(m);
  } finally {
    await m.stop();
  }
  return m.commit;
}

const commit = await withMimir('A', { security: false }, securityOff);
await withMimir('B', { security: true }, securityOn);
await withMimir('C', { security: true, rbac: true }, rbac);

check('routes', 'route count', String(facts.route_count), String(facts.routes.length), facts.route_count === facts.routes.length);
for (const row of rows) {
  check('routes', `${row.method} ${row.path} exists`, 'yes', row.exists ? 'yes' : `no (${row.off})`, row.exists);
  check('gate', `${row.method} ${row.path} with no credential, security on`, row.gate ? '401 (gate)' : 'not 401', row.on, row.gateOk);
}

console.log(`\nMimir ${commit} against ${factsPath} (${facts.about.match(/commit \w+/)?.[0] ?? ''})\n`);
console.log(table(['#', 'route', 'sent', 'security off: answer', 'exists', 'security on, no credential', 'gate per facts'],
  rows.map((r) => [String(r.n + 1), `${r.method} ${r.path}`, r.target, r.off, r.exists ? 'yes' : 'NO', r.on, `${r.gate ? '401' : 'open'} ${r.gateOk ? 'OK' : 'DIFF'}`])));
const others = checks.filter((c) => c.area !== 'routes' || !c.what.endsWith(' exists')).filter((c) => c.area !== 'gate');
console.log(`\n${table(['area', 'check', 'expected (facts)', 'observed', ''], others.map((c) => [c.area, c.what, c.expected, c.observed, c.ok ? 'OK' : 'DIFF']))}`);
const diffs = checks.filter((c) => !c.ok);
console.log(`\n${checks.length} checks, ${diffs.length} differ${diffs.length ? ':' : ''}`);
for (const d of diffs) console.log(`  DIFF [${d.area}] ${d.what}: expected ${d.expected}; observed ${d.observed}`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ commit, facts: factsPath, rows, checks }, null, 2));
process.exit(diffs.length ? 1 : 0);
