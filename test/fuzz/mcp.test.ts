/**
 * Fuzzing MCP on the proxy (src/proxy/mcp.ts): JSON-RPC messages (`parseMcpMessage`), the
 * SEP-2243 standard headers (`checkStandardHeaders`), the SSE rewriting of tools/list answers
 * (`sseDataTransform`, against the WHATWG event-stream grammar), in-process and as POST /mcp
 * through a real hub with a real MCP upstream behind it.
 *
 *   node --test test/fuzz/mcp.test.ts                  bounded, part of npm test
 *   FUZZ_RUNS=20000 node --test test/fuzz/mcp.test.ts  the long run
 *   FUZZ_SEED=… FUZZ_PATH=… node --test test/fuzz/…    replays a printed counterexample
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import {
  checkStandardHeaders, decodeHeaderValue, filterToolsResult, McpProtocolError, mcpPermission, parseMcpMessage, sseDataTransform, type JsonRpcMessage,
} from '../../src/proxy/mcp.ts';
import { startHub, type TestHub } from '../helpers/hub.ts';
import { RBAC_FIXTURE, startFront, type Front } from '../proxy/setup.ts';
import { TOOLS } from '../proxy/upstream.ts';
import {
  anyString, applyEdits, assertAlive, assertThrownIs, bounded, edits, fuzz, hostile, jsonValue, raw, RUNS, show, UNIT_RUNS, type RawResponse,
} from './support.ts';

const VERSIONS = ['2025-11-25', '2026-07-28', '2025-06-18', '2025-03-26', '2099-01-01', '2026-7-28', ''];
const METHODS = ['initialize', 'tools/list', 'tools/call', 'ping', 'notifications/initialized', 'resources/list', 'resources/read', 'prompts/get',
  'tasks/get', 'tasks/cancel', 'completion/complete', 'logging/setLevel'];
const ACCEPT = 'application/json, text/event-stream';

/** The body field SEP-2243's Mcp-Name mirrors, per method. */
const NAME_FIELD: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri', 'tasks/get': 'taskId', 'tasks/cancel': 'taskId' };

/** A JSON-RPC id, of every JSON type (objects and arrays are refused: item 12 of issue 15). */
const id = () => fc.oneof(
  fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null), fc.constantFrom(0, -0, 1.5, 2 ** 53 + 1, 1e300, '1', ''),
  jsonValue(1),
);

/** A message: a valid one of a known method, with members mutated, dropped or added. */
const message: fc.Arbitrary<Record<string, unknown>> = fc.oneof(fc.constantFrom(...METHODS), hostile(METHODS, 24)).chain((method) => fc.record({
  jsonrpc: fc.oneof({ weight: 9, arbitrary: fc.constant('2.0') }, { weight: 1, arbitrary: fc.oneof(jsonValue(1), hostile(['2.0'])) }),
  id: id(),
  method: fc.oneof({ weight: 9, arbitrary: fc.constant(method) }, { weight: 1, arbitrary: jsonValue(1) }),
  params: fc.oneof(
    { weight: 6, arbitrary: fc.record({
      name: fc.oneof(fc.constantFrom(...TOOLS), hostile([...TOOLS], 24), jsonValue(1)),
      arguments: fc.oneof(fc.record({ query: anyString(16), title: anyString(16) }, { requiredKeys: [], noNullPrototype: true }), jsonValue(2)),
      uri: hostile(['mimir://nodes/1']),
      taskId: anyString(16),
      protocolVersion: hostile(VERSIONS),
      capabilities: fc.oneof(fc.constant({}), jsonValue(1)),
      clientInfo: fc.oneof(fc.constant({ name: 'fuzz', version: '1' }), jsonValue(1)),
      cursor: anyString(8),
      _meta: fc.oneof(fc.record({ 'io.modelcontextprotocol/protocolVersion': fc.oneof(hostile(VERSIONS), jsonValue(1)) }, { noNullPrototype: true }), jsonValue(1)),
    }, { requiredKeys: [], noNullPrototype: true }) },
    { weight: 1, arbitrary: jsonValue(2) },
  ),
}, { requiredKeys: ['jsonrpc', 'method'], noNullPrototype: true }));

/** A request body: the message as JSON, mutated JSON text, a batch, any JSON, or bytes. */
const body = fc.oneof(
  { weight: 8, arbitrary: message.map((m) => ({ m, text: JSON.stringify(m) })) },
  { weight: 2, arbitrary: fc.tuple(message, edits).map(([m, e]) => ({ m: undefined as Record<string, unknown> | undefined, text: applyEdits(JSON.stringify(m), e) })) },
  { weight: 1, arbitrary: fc.array(message, { minLength: 0, maxLength: 2 }).map((a) => ({ m: undefined, text: JSON.stringify(a) })) },
  { weight: 1, arbitrary: jsonValue(3).map((v) => ({ m: undefined, text: JSON.stringify(v) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => ({ m: undefined, text: Buffer.from(b).toString('latin1') })) },
);

/** The SEP-2243 headers of a message: mostly consistent with it, sometimes not, sometimes missing. */
const standardHeaders = (m: Record<string, unknown> | undefined): fc.Arbitrary<Array<[string, string]>> => {
  const method = typeof m?.method === 'string' ? m.method : 'tools/call';
  const params = m?.params && typeof m.params === 'object' ? m.params as Record<string, unknown> : {};
  const field = NAME_FIELD[method];
  const name = field !== undefined && typeof params[field] === 'string' ? params[field] as string : 'memory_search';
  return fc.tuple(
    fc.option(hostile(VERSIONS), { freq: 2 }),
    fc.option(fc.oneof({ weight: 4, arbitrary: fc.constant(method) }, { weight: 1, arbitrary: hostile(METHODS) }), { freq: 2 }),
    fc.option(fc.oneof(fc.constant(name), fc.constant(`=?base64?${Buffer.from(name).toString('base64')}?=`), hostile([name, '=?base64?bWVtb3J5X3NlYXJjaA==?='])), { freq: 3 }),
  ).map(([version, methodHeader, nameHeader]) => [
    ...(version !== null ? [['mcp-protocol-version', version] as [string, string]] : []),
    ...(methodHeader !== null ? [['mcp-method', methodHeader] as [string, string]] : []),
    ...(nameHeader !== null ? [['mcp-name', nameHeader] as [string, string]] : []),
  ]);
};

/**
 * The events of a text/event-stream, by the WHATWG HTML §9.2.6 grammar: lines end with CRLF, LF
 * or CR; a blank line dispatches the data gathered since the last one; data not followed by a
 * blank line by the end of the stream is dropped.
 */
function sseEvents(text: string): string[] {
  const out: string[] = [];
  let data: string | undefined;
  const lines = text.split(/\r\n|\r|\n/);
  lines.pop(); // the part after the last line ending is not a line
  for (const line of lines) {
    if (line === '') {
      if (data !== undefined) out.push(data.endsWith('\n') ? data.slice(0, -1) : data);
      data = undefined;
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let v = colon === -1 ? '' : line.slice(colon + 1);
    if (v.startsWith(' ')) v = v.slice(1);
    if (field === 'data') data = `${data ?? ''}${v}\n`;
  }
  return out;
}

/** Pushes `chunks` through a fresh transform and collects what comes out. */
async function transformed(chunks: readonly Buffer[], rewrite: (data: string) => string): Promise<string> {
  const out: Buffer[] = [];
  const stream = Readable.from(chunks).pipe(sseDataTransform(rewrite));
  for await (const c of stream) out.push(Buffer.from(c as string | Buffer));
  return Buffer.concat(out).toString('utf8');
}

/** Splits bytes at the given (sorted, deduplicated) offsets. */
function split(bytes: Buffer, at: readonly number[]): Buffer[] {
  const cuts = [...new Set(at.map((n) => n % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of cuts) { out.push(bytes.subarray(from, c)); from = c; }
  out.push(bytes.subarray(from));
  return out.filter((b) => b.length > 0);
}

describe('fuzz: MCP messages in-process', () => {
  it('parseMcpMessage answers any body with a JSON-RPC 2.0 message or McpProtocolError (parse error / invalid request)', () => {
    const bytes = fc.oneof(body.map((b) => Buffer.from(b.text, 'utf8')), fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)));
    fc.assert(fc.property(bytes, (input) => {
      try {
        const m = bounded('parseMcpMessage', () => parseMcpMessage(input));
        assert.equal(m.jsonrpc, '2.0');
        assert.ok(m.method === undefined || typeof m.method === 'string');
        assert.ok(m.params === undefined || (typeof m.params === 'object' && m.params !== null && !Array.isArray(m.params)));
        assert.equal(typeof bounded('mcpPermission', () => mcpPermission(m) ?? ''), 'string');
      } catch (e) {
        assertThrownIs(e, [McpProtocolError]);
        const err = e as McpProtocolError;
        assert.ok([-32700, -32600].includes(err.code), `code ${err.code}`);
        assert.ok(err.id === null || typeof err.id === 'string' || typeof err.id === 'number');
      }
    }), fuzz(UNIT_RUNS));
  });

  it('checkStandardHeaders accepts consistent headers and refuses the rest with HeaderMismatch only', () => {
    const parsed = message.map((m) => { try { return parseMcpMessage(Buffer.from(JSON.stringify(m))); } catch { return undefined; } }).filter((m): m is JsonRpcMessage => m !== undefined);
    const input = parsed.chain((m) => fc.tuple(fc.constant(m), standardHeaders(m as unknown as Record<string, unknown>), fc.boolean()));
    fc.assert(fc.property(input, ([m, pairs, asArrays]) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of pairs) headers[k] = asArrays ? [v, 'x'] : v;
      try {
        bounded('checkStandardHeaders', () => checkStandardHeaders(headers, m));
        const name = pairs.find(([k]) => k === 'mcp-name')?.[1];
        if (name !== undefined) {
          // Accepted with an Mcp-Name: it names what the body names (the point of SEP-2243).
          const field = NAME_FIELD[m.method ?? ''];
          assert.ok(field !== undefined && decodeHeaderValue(name) === m.params?.[field], `Mcp-Name ${name} accepted for ${JSON.stringify(m)}`);
        }
        const method = pairs.find(([k]) => k === 'mcp-method')?.[1];
        if (method !== undefined) assert.equal(method, m.method);
      } catch (e) {
        assertThrownIs(e, [McpProtocolError]);
        assert.equal((e as McpProtocolError).code, -32020);
      }
    }), fuzz(UNIT_RUNS));
  });

  it('decodeHeaderValue and filterToolsResult answer any input; a filtered list holds only allowed tools', () => {
    const tools = fc.array(fc.oneof(fc.record({ name: fc.oneof(fc.constantFrom(...TOOLS), anyString(12)) }, { noNullPrototype: true }), jsonValue(1)), { maxLength: 4 });
    const result = fc.oneof(fc.record({ jsonrpc: fc.constant('2.0'), id: fc.constant(1), result: fc.record({ tools, nextCursor: anyString(4) }, { requiredKeys: ['tools'], noNullPrototype: true }) }, { noNullPrototype: true }), jsonValue(3));
    fc.assert(fc.property(anyString(64), result, (header, answer) => {
      const decoded = bounded('decodeHeaderValue', () => decodeHeaderValue(header));
      assert.ok(decoded === undefined || typeof decoded === 'string');
      const filtered = bounded('filterToolsResult', () => filterToolsResult(answer, (name) => name === 'memory_search')) as { id?: unknown; result?: { tools?: unknown } } | null;
      const listed = filtered?.id === 1 ? filtered.result?.tools : undefined;
      if (Array.isArray(listed) && listed !== (answer as { result?: { tools?: unknown } }).result?.tools) {
        assert.ok(listed.every((t) => (t as { name?: unknown }).name === 'memory_search'), JSON.stringify(listed));
      }
    }), fuzz(UNIT_RUNS));
  });

  /** SSE text from events of field lines, with any line endings, comments and stray blank lines. */
  const sseText = fc.array(fc.tuple(
    fc.array(fc.oneof(
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom('data:', 'data: '), fc.oneof(anyString(24), jsonValue(2).map((v) => JSON.stringify(v)))).map(([f, v]) => f + v.replace(/[\r\n]/g, '')) },
      { weight: 1, arbitrary: fc.constantFrom('event: message', 'id: 7', 'retry: 10', ': comment', 'data', 'event:', 'x: y') },
    ), { minLength: 0, maxLength: 4 }),
    fc.array(fc.constantFrom('\n', '\r', '\r\n'), { minLength: 5, maxLength: 5 }),
  ), { maxLength: 4 }).map((events) => events.map(([lines, endings]) => lines.map((l, i) => l + endings[i % 4]!).join('') + endings[4]).join(''));

  it('sseDataTransform rewrites exactly the data of each event, whatever the line endings and however the stream is cut', async () => {
    const rewrite = (d: string) => `<${d}>`;
    await fc.assert(fc.asyncProperty(sseText, fc.array(fc.nat(), { maxLength: 6 }), async (text, cuts) => {
      const bytes = Buffer.from(text, 'utf8');
      const whole = await transformed([bytes], rewrite);
      // The events of the bytes sent (a lone surrogate goes out as U+FFFD).
      assert.deepEqual(sseEvents(whole), sseEvents(bytes.toString('utf8')).map(rewrite), `input ${JSON.stringify(text)} came out as ${JSON.stringify(whole)}`);
      // A chunk boundary anywhere (inside a CRLF, inside a UTF-8 sequence) changes nothing.
      assert.equal(await transformed(split(bytes, cuts), rewrite), whole, `cut at ${cuts.join(',')}: ${JSON.stringify(text)}`);
    }), fuzz(UNIT_RUNS));
  });
});

// Found by 'sseDataTransform rewrites exactly the data of each event …': a blank line written as
// LF CR LF, LF CR or CRLF CR (WHATWG HTML §9.2.6 allows any line ending) did not end the event,
// so tools/list events were merged with the next one (and left unfiltered) or never ended.
describe('regression (issue 15): tools/list answers whose SSE events end with mixed line endings', () => {
  let upstream: Server;
  let t: TestHub;
  let token: string;
  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const tools = { jsonrpc: '2.0', id: 1, result: { tools: TOOLS.map((name) => ({ name, inputSchema: { type: 'object' } })) } };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\r\nevent: message\ndata: ${JSON.stringify(tools)}\n\r\n`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    t = await startHub({ storage: 'memory', env: { MIMIR_UPSTREAM_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, MIMIR_RBAC_CONFIG: RBAC_FIXTURE } });
    // A caller whose token narrows it to one tool (scope mcp:tool:memory_search).
    const { clientSecret } = await t.hub.serviceAccounts.create({ clientId: 'fuzz-narrow-sse', roles: ['developer'], scopes: ['mcp:tool:memory_search'] });
    const res = await raw(t.url, {
      method: 'POST', path: '/auth/token', body: 'grant_type=client_credentials',
      headers: [['authorization', `Basic ${Buffer.from(`fuzz-narrow-sse:${clientSecret}`).toString('base64')}`], ['content-type', 'application/x-www-form-urlencoded']],
    });
    token = (JSON.parse(res.body) as { access_token: string }).access_token;
  });
  after(async () => {
    await t?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  it('each event reaches the caller, and the tool list is filtered', async () => {
    const res = await raw(t.url, {
      method: 'POST', path: '/mcp', body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      headers: [['authorization', `Bearer ${token}`], ['content-type', 'application/json'], ['accept', ACCEPT]],
    });
    assert.equal(res.status, 200, show(res));
    const events = sseEvents(res.body).map((d) => JSON.parse(d) as { method?: string; result?: { tools: Array<{ name: string }> } });
    assert.equal(events.length, 2, JSON.stringify(res.body));
    assert.equal(events[0]!.method, 'notifications/message');
    assert.deepEqual(events[1]!.result!.tools.map((x) => x.name), ['memory_search']);
  });
});

describe('fuzz: POST /mcp through the proxy', () => {
  let f: Front;
  /** Credentials, and the tools each may see listed. */
  const callers: Array<{ name: string; header: [string, string]; allowed: ReadonlySet<string> | 'all'; session?: string }> = [];

  before(async () => {
    f = await startFront({ env: { MIMIR_MCP_ALLOWED_ORIGINS: 'https://app.example' } });
    const dev = (await f.t.hub.apiKeys.create({ name: 'dev', roles: ['developer'] })).key;
    const viewer = (await f.t.hub.apiKeys.create({ name: 'viewer', roles: ['viewer'] })).key;
    const { clientSecret } = await f.t.hub.serviceAccounts.create({ clientId: 'fuzz-narrow', roles: ['developer'], scopes: ['mcp:tool:memory_search'] });
    const tokenRes = await raw(f.t.url, {
      method: 'POST', path: '/auth/token', body: 'grant_type=client_credentials',
      headers: [['authorization', `Basic ${Buffer.from(`fuzz-narrow:${clientSecret}`).toString('base64')}`], ['content-type', 'application/x-www-form-urlencoded']],
    });
    const narrow = (JSON.parse(tokenRes.body) as { access_token: string }).access_token;
    callers.push(
      { name: 'developer', header: ['x-api-key', dev], allowed: 'all' },
      { name: 'viewer', header: ['x-api-key', viewer], allowed: new Set() },
      { name: 'narrow', header: ['authorization', `Bearer ${narrow}`], allowed: new Set(['memory_search']) },
    );
    for (const c of callers) {
      const res = await post(c.header, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } } }), []);
      assert.equal(res.status, 200, `${c.name} initializes: ${show(res)}`);
      c.session = res.headers['mcp-session-id'];
      await post(c.header, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), [['mcp-session-id', c.session!]]);
    }
  });
  after(async () => { await f?.close(); });

  function post(credential: [string, string], text: string, headers: Array<[string, string]>, method = 'POST', path = '/mcp'): Promise<RawResponse> {
    return raw(f.t.url, { method, path, body: text, headers: [credential, ['content-type', 'application/json'], ['accept', ACCEPT], ...headers] });
  }

  /** The JSON-RPC messages of an answer, whether it came as JSON or as an event stream. */
  function messagesOf(res: RawResponse): unknown[] {
    const texts = /text\/event-stream/.test(res.headers['content-type'] ?? '') ? sseEvents(res.body) : [res.body];
    return texts.flatMap((t) => { try { return [JSON.parse(t) as unknown]; } catch { return []; } });
  }

  it('any message, headers and session answer a 2xx, or a 4xx with an OAuth or JSON-RPC error; tools/list lists only permitted tools', async () => {
    const request = fc.record({
      caller: fc.nat({ max: 2 }),
      session: fc.constantFrom('own', 'own', 'own', 'other', 'none', 'random'),
      body,
      method: fc.constantFrom('POST', 'POST', 'POST', 'POST', 'POST', 'POST', 'DELETE', 'GET'),
      path: fc.constantFrom('/mcp', '/mcp', '/mcp/', '/MCP', '/mcp?x=1'),
      extra: fc.array(fc.oneof(
        fc.tuple(fc.constant('accept'), hostile([ACCEPT, 'application/json', 'text/event-stream', '*/*'])),
        fc.tuple(fc.constant('content-type'), hostile(['application/json', 'text/plain', 'application/json; charset=utf-8'])),
        fc.tuple(fc.constant('origin'), hostile(['https://app.example', 'https://evil.example', 'null'])),
      ), { maxLength: 2 }),
    }, { noNullPrototype: true }).chain((r) => standardHeaders(r.body.m).map((std) => ({ ...r, std })));

    await fc.assert(fc.asyncProperty(request, async (r) => {
      const c = callers[r.caller]!;
      const session = { own: c.session, other: callers[(r.caller + 1) % 3]!.session, none: undefined, random: randomUUID() }[r.session];
      // GET with a live session opens the long-lived stream of the 2025 revisions: not a request/answer.
      if (r.method === 'GET' && (r.session === 'own' || r.session === 'other')) return;
      const headers: Array<[string, string]> = [...(session ? [['mcp-session-id', session] as [string, string]] : []), ...r.std, ...r.extra];
      // GET and DELETE carry no body (one there has no meaning; the upstream's own parser would judge it).
      const text = r.method === 'POST' ? r.body.text : '';
      const res = await post(c.header, text, headers, r.method, r.path);
      const input = { caller: c.name, method: r.method, path: r.path, body: text, headers };
      assert.ok(res.status < 500, `answered ${show(res)}\ninput: ${JSON.stringify(input)}`);
      // The upstream's own refusals (Express, relayed as they are) have the upstream's shape, not the hub's.
      const relayed = res.headers['x-powered-by'] === 'Express';
      if (res.status >= 400 && !relayed) {
        let error: unknown;
        try { error = (JSON.parse(res.body) as { error?: unknown }).error; } catch { /* checked below */ }
        assert.ok(typeof error === 'string' || typeof (error as { code?: unknown } | undefined)?.code === 'number', `a ${res.status} without an error: ${show(res)}\ninput: ${JSON.stringify(input)}`);
      }
      if (res.status === 200 && c.allowed !== 'all') {
        for (const m of messagesOf(res)) {
          const tools = (m as { result?: { tools?: unknown } })?.result?.tools;
          if (!Array.isArray(tools)) continue;
          const names = tools.map((t) => (t as { name?: unknown }).name);
          assert.ok(names.every((n) => typeof n === 'string' && c.allowed !== 'all' && c.allowed.has(n)), `${c.name} was listed ${names.join(', ')}\ninput: ${JSON.stringify(input)}`);
        }
      }
    }), fuzz(RUNS));
    await assertAlive(f.t.url);
  });

  it('a tools/list answer to a narrowed caller holds only its tools, whatever the id (of any JSON type)', async () => {
    const c = () => callers[2]!;
    await fc.assert(fc.asyncProperty(id(), fc.boolean(), async (value, withSession) => {
      const res = await post(c().header, JSON.stringify({ jsonrpc: '2.0', id: value, method: 'tools/list' }), withSession ? [['mcp-session-id', c().session!]] : []);
      assert.ok(res.status < 500, show(res));
      for (const m of messagesOf(res)) {
        const tools = (m as { result?: { tools?: Array<{ name: string }> } })?.result?.tools;
        if (tools) assert.deepEqual(tools.map((t) => t.name), ['memory_search'], `id ${JSON.stringify(value)}: ${show(res)}`);
      }
    }), fuzz(Math.ceil(RUNS / 3)));
  });
});

