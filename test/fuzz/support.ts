/**
 * Shared parts of the fuzz tests (test/fuzz/README.md): run counts, replay, the oracles every
 * property applies (a refusal is the project's own error with a 4xx, an HTTP answer is never a
 * 5xx and has the right error shape, nothing hangs) and generators of hostile input built by
 * mutating valid examples.
 *
 *   FUZZ_RUNS=20000 node --test 'test/fuzz/*.test.ts'   the long run (default 300 per HTTP property)
 *   FUZZ_SEED=<seed> FUZZ_PATH=<path> node --test …    replays the counterexample fast-check printed
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { OAuthError } from '../../src/errors.ts';

/** Runs of a property that sends HTTP requests to a real hub. */
export const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
/** Runs of a property that calls a parser in-process: cheaper by orders of magnitude. */
export const UNIT_RUNS = RUNS * 5;

/**
 * fast-check parameters: the run count, a timeout per run of an async property (a hang fails the
 * property with its seed instead of stalling the suite), and the replay of a printed seed/path.
 */
export function fuzz(numRuns: number, extra: fc.Parameters<any> = {}): fc.Parameters<any> {
  const seed = process.env.FUZZ_SEED;
  const path = process.env.FUZZ_PATH;
  return {
    // A whole number: fast-check never ends a run count like 12.5 (FUZZ_RUNS=5 halved).
    numRuns: Math.max(1, Math.ceil(numRuns)),
    timeout: HANG_MS,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {}),
    ...extra,
  };
}

/**
 * How long one parse or one request may take before it counts as a hang. Generous on purpose:
 * a busy CI core must never trip it; an input that makes a parser loop or backtrack for real
 * (quadratic on a few kilobytes and worse) does.
 */
export const HANG_MS = 10_000;
/** A synchronous parser on a few kilobytes of input answers in microseconds; this is a hang. */
export const SYNC_HANG_MS = 2_000;

/** Runs a synchronous parser and fails when it takes longer than {@link SYNC_HANG_MS}. */
export function bounded<T>(what: string, fn: () => T): T {
  const started = performance.now();
  try {
    return fn();
  } finally {
    const took = performance.now() - started;
    assert.ok(took < SYNC_HANG_MS, `${what} took ${Math.round(took)} ms on one input (a hang)`);
  }
}

/** What the thrown value is, for the message of a failed assertion (a TypeError is a finding). */
export function describeThrown(e: unknown): string {
  return e instanceof Error ? `${e.constructor.name}: ${e.message}\n${e.stack ?? ''}` : `non-Error ${String(e)}`;
}

/** A refusal must be an OAuthError with a 4xx status (a 5xx for bad input is a finding). */
export function assertOAuthRefusal(e: unknown, codes?: readonly string[]): asserts e is OAuthError {
  assert.ok(e instanceof OAuthError, `expected an OAuthError, got ${describeThrown(e)}`);
  assert.ok(e.status >= 400 && e.status < 500, `bad input answered ${e.status} ${e.error}: ${e.description}`);
  if (codes) assert.ok(codes.includes(e.error), `unexpected error code ${e.error} (${e.description}); expected one of ${codes.join(', ')}`);
}

/** A refusal must be an instance of one of `classes` (the parser's documented error types). */
export function assertThrownIs(e: unknown, classes: ReadonlyArray<abstract new (...args: never[]) => Error>): void {
  assert.ok(classes.some((c) => e instanceof c), `expected ${classes.map((c) => c.name).join(' or ')}, got ${describeThrown(e)}`);
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Strings the parsers treat specially, to be spliced into mutated input. */
export const SPECIAL_TOKENS = [
  '', ' ', '  ', '\t', '.', '..', '=', '==', ',', ';', ':', '%', '%00', '%zz', '%2e', '+', '/', '\\', '"', "'", '{', '}', '[', ']',
  'null', 'true', '0', '-1', '1e999', 'Bearer', 'bearer ', 'DPoP ', 'Basic ', 'mimir_', 'eyJ', 'e30', 'bnVsbA', '\u00e9', '\u00ff',
  '\u{1f600}', '\ud800', '\u2028', '\ufeff', 'A'.repeat(300), '.'.repeat(50), '='.repeat(40),
];

/** Any string: ASCII, then any code unit (lone surrogates included), then any code point. */
export const anyString = (maxLength = 64): fc.Arbitrary<string> => fc.oneof(
  fc.string({ maxLength }),
  fc.string({ unit: 'binary-ascii', maxLength }),
  fc.string({ unit: 'binary', maxLength }),
  fc.constantFrom(...SPECIAL_TOKENS),
);

/** One edit of a string: insert, delete, replace, duplicate, truncate, or change case. */
export type Edit = { op: 'insert' | 'delete' | 'replace' | 'duplicate' | 'truncate' | 'case'; at: number; length: number; text: string };

export const edit: fc.Arbitrary<Edit> = fc.record({
  op: fc.constantFrom('insert', 'delete', 'replace', 'duplicate', 'truncate', 'case'),
  at: fc.nat(),
  length: fc.integer({ min: 1, max: 16 }),
  text: fc.oneof(fc.constantFrom(...SPECIAL_TOKENS), fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ maxLength: 8 })),
}, { noNullPrototype: true });

/** One to four edits, for mutating a value known only when the run starts (see {@link applyEdits}). */
export const edits: fc.Arbitrary<Edit[]> = fc.array(edit, { minLength: 1, maxLength: 4 });

export function applyEdits(s: string, list: readonly Edit[]): string {
  return list.reduce(applyEdit, s);
}

function applyEdit(s: string, e: Edit): string {
  const at = s.length === 0 ? 0 : e.at % (s.length + 1);
  switch (e.op) {
    case 'insert': return s.slice(0, at) + e.text + s.slice(at);
    case 'delete': return s.slice(0, at) + s.slice(at + e.length);
    case 'replace': return s.slice(0, at) + e.text + s.slice(at + e.text.length);
    case 'duplicate': return s.slice(0, at + e.length) + s.slice(at, at + e.length) + s.slice(at + e.length);
    case 'truncate': return s.slice(0, at);
    case 'case': return s.slice(0, at) + s.slice(at, at + e.length).replace(/./g, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase())) + s.slice(at + e.length);
  }
}

/** A valid example with one to four random edits. */
export function mutated(valid: fc.Arbitrary<string> | readonly string[]): fc.Arbitrary<string> {
  const base = Array.isArray(valid) ? fc.constantFrom(...(valid as string[])) : valid as fc.Arbitrary<string>;
  return fc.tuple(base, edits).map(([s, list]) => applyEdits(s, list));
}

/** Valid examples as they are, mutated, and unrelated strings: the input of most properties. */
export function hostile(valid: readonly string[], maxLength = 64): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom(...valid) },
    { weight: 6, arbitrary: mutated(valid) },
    { weight: 2, arbitrary: anyString(maxLength) },
  );
}

export const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** A JSON object member value: anything JSON can carry, `__proto__`-free (JSON.parse makes it an own key; zod and spreads do not). */
export const jsonValue = (maxDepth = 3): fc.Arbitrary<unknown> => fc.jsonValue({ maxDepth });

/**
 * A JWT-shaped string from a header and a payload: each part JSON (possibly not an object), or
 * not JSON at all, or not base64url; then a signature of random bytes, none, or extra parts.
 */
export function jwtShaped(header: fc.Arbitrary<unknown>, payload: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  const part = (json: fc.Arbitrary<unknown>) => fc.oneof(
    { weight: 6, arbitrary: json.map((v) => b64url(JSON.stringify(v) ?? 'null')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((b) => b64url(Buffer.from(b))) },
    { weight: 1, arbitrary: json.map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64')) },
    { weight: 1, arbitrary: anyString(24) },
  );
  const signature = fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => b64url(Buffer.from(b))), fc.constant(''), anyString(16));
  return fc.tuple(part(header), part(payload), signature, fc.constantFrom('', '', '', '.', '.x')).map(([h, p, s, extra]) => `${h}.${p}.${s}${extra}`);
}

// ---------------------------------------------------------------------------------------------
// HTTP from outside

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One request over a fresh TCP connection, bytes exactly as given: header names and values that
 * `fetch` refuses or normalises (duplicates, obs-text, odd whitespace) reach the hub as sent.
 * The head is written as UTF-8 (Node reads its bytes as latin1). Control characters other than
 * HTAB are dropped from values: RFC 9110 §5.5 forbids them, Node refuses such a request before
 * any of the hub's parsers sees it, and CR LF would split one generated header into two.
 * Fails after {@link HANG_MS}.
 */
export function raw(base: string, request: { method?: string; path: string; headers?: ReadonlyArray<readonly [string, string]>; body?: string | Buffer }): Promise<RawResponse> {
  const url = new URL(base);
  const body = request.body === undefined ? undefined : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body, 'utf8');
  const lines = [`${request.method ?? 'GET'} ${request.path} HTTP/1.1`, `host: ${url.host}`, 'connection: close'];
  for (const [name, value] of request.headers ?? []) lines.push(`${name}: ${fieldValue(value)}`);
  if (body !== undefined) lines.push(`content-length: ${body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${HANG_MS} ms to ${request.method ?? 'GET'} ${request.path} (a hang)`));
    }, HANG_MS);
    // write, not end: Node's server drops a connection whose client half-closed before the answer.
    socket.on('connect', () => socket.write(body ? Buffer.concat([head, body]) : head));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** A field value as HTTP allows it (RFC 9110 §5.5): no control characters but HTAB. */
export function fieldValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
}

function parseResponse(bytes: Buffer): RawResponse {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`the connection closed without a complete response (${bytes.length} bytes: ${JSON.stringify(bytes.toString('latin1').slice(0, 200))})`);
  const [statusLine, ...headerLines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers[name] = headers[name] === undefined ? line.slice(colon + 1).trim() : `${headers[name]}, ${line.slice(colon + 1).trim()}`;
  }
  let body = bytes.subarray(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status: Number(m[1]), headers, body: body.toString('utf8') };
}

function dechunk(bytes: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = parseInt(bytes.subarray(at, eol).toString('latin1'), 16);
    if (!size) break;
    out.push(bytes.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** `fetch` with the hang bound of the raw requests. */
export async function request(url: string, init: RequestInit = {}): Promise<RawResponse> {
  const res = await fetch(url, { redirect: 'manual', ...init, signal: AbortSignal.timeout(HANG_MS) });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

/** Shows an answer (status, error code, start of the body) in a failed assertion. */
export function show(res: RawResponse): string {
  return `${res.status} ${JSON.stringify(res.body.slice(0, 300))}`;
}

/**
 * The hub's answer to bad input: never a 5xx; a 4xx of an API route is JSON with a string `error`
 * (RFC 6749 §5.2 / RFC 6750 §3.1), and a 401 carries a `WWW-Authenticate` challenge.
 */
export function assertApiAnswer(res: RawResponse, input?: unknown): void {
  const context = input === undefined ? '' : `\ninput: ${fc.stringify(input)}`;
  assert.ok(res.status < 500, `answered ${show(res)}${context}`);
  if (res.status >= 400) {
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      assert.fail(`a ${res.status} whose body is not JSON: ${show(res)}${context}`);
    }
    assert.equal(typeof (body as { error?: unknown }).error, 'string', `a ${res.status} without a string "error": ${show(res)}${context}`);
    if (res.status === 401) assert.ok(res.headers['www-authenticate'], `a 401 without WWW-Authenticate: ${show(res)}${context}`);
  }
}

/** The error code of a JSON error answer. */
export function errorOf(res: RawResponse): string | undefined {
  try {
    const body = JSON.parse(res.body) as { error?: unknown };
    return typeof body.error === 'string' ? body.error : undefined;
  } catch {
    return undefined;
  }
}

/** The hub still answers after the run. */
export async function assertAlive(base: string): Promise<void> {
  const res = await request(`${base}/health`);
  assert.equal(res.status, 200, `/health answered ${show(res)} after the fuzzing`);
}
