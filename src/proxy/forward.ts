/**
 * The request toward the upstream Mimir, framework-free: which inbound headers never pass
 * (credentials, identity claims, hop-by-hop), which the hub sets (user context from the
 * Principal, X-Forwarded-*, the forwarded token), and the streaming request itself.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamIdentity } from '../authz/identity.ts';
import { OAuthError } from '../errors.ts';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the non-standard ones proxies still see. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'expect']);
/** Inbound credentials: the upstream must never see them (MCP forbids token passthrough). */
const CREDENTIALS = new Set(['authorization', 'x-api-key', 'dpop']);
/** Set by the hub from what it verified; an inbound value would be a claim nobody checked. */
const FORWARDING = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip']);
/**
 * Method overrides: the hub authorized the request's own method, and an upstream honouring one
 * of these (Express's method-override, many frameworks) would run another.
 */
const METHOD_OVERRIDES = new Set(['x-http-method-override', 'x-method-override', 'x-http-method']);

export interface HeaderPolicy {
  /** Cookies that never reach the upstream: the hub's own, and the one Mimir reads a credential from. */
  strippedCookies: ReadonlySet<string>;
  userContext: { enabled: boolean; idHeader: string; emailHeader: string; rolesHeader: string };
  forwardingHeader: string;
}

export interface ForwardFacts {
  /** Who the upstream is told the caller is (src/authz/identity.ts). */
  identity: UpstreamIdentity;
  clientIp: string;
  proto: string;
  host: string;
  /** The caller's IdP token, when token forwarding applies. */
  forwardedToken?: string | undefined;
  /** The `Authorization` the upstream gets (src/proxy/upstream-auth.ts), if any: never the caller's own header. */
  authorization?: string | null | undefined;
}

/**
 * The headers sent upstream, as a flat list `[name, value, …]` (the form of `rawHeaders`, which
 * undici takes as it is). Host is not in it: {@link callUpstream} adds the upstream's own.
 * `inbound` is node:http's (or Fastify's) parsed headers, whose names are already lower case.
 *
 * @example
 * upstreamHeaders(req.headers, policy, { identity: hub.identities.upstream(principal), clientIp: req.ip, proto: 'https', host: 'mimir.example' })
 */
export function upstreamHeaders(inbound: IncomingHttpHeaders, policy: HeaderPolicy, facts: ForwardFacts): string[] {
  const identity = identityHeaders(policy);
  const named = connectionTokens(inbound.connection);
  const out: string[] = [];
  for (const n in inbound) {
    const value = inbound[n];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(n) || named.has(n) || CREDENTIALS.has(n) || FORWARDING.has(n) || METHOD_OVERRIDES.has(n) || identity.has(n) || n === 'host' || n.startsWith('x-user-')) continue;
    if (n === 'cookie') {
      const kept = withoutCookies(Array.isArray(value) ? value.join('; ') : value, policy.strippedCookies);
      if (kept) out.push(n, kept);
    } else if (Array.isArray(value)) {
      for (const v of value) out.push(n, v);
    } else {
      out.push(n, value);
    }
  }
  out.push('x-forwarded-for', facts.clientIp, 'x-forwarded-proto', facts.proto, 'x-forwarded-host', facts.host);
  if (policy.userContext.enabled) {
    const who = facts.identity;
    out.push(policy.userContext.idHeader.toLowerCase(), fieldValue(who.id));
    if (who.email) out.push(policy.userContext.emailHeader.toLowerCase(), fieldValue(who.email));
    out.push(policy.userContext.rolesHeader.toLowerCase(), fieldValue(who.roles.join(',')));
  }
  if (facts.forwardedToken) out.push(policy.forwardingHeader.toLowerCase(), facts.forwardedToken);
  if (facts.authorization) out.push('authorization', facts.authorization);
  return out;
}

/**
 * Query parameters Mimir reads a credential from (`?access_token=`, `?api_key=`): a caller must
 * not hand the upstream a credential the hub never checked (someone else's Mimir token).
 */
const CREDENTIAL_PARAMS = /^(access_token|api_key)(\[.*)?$/;

/**
 * The target without the query parameters that carry a credential, every other parameter kept
 * as written and in order. Names are compared as Mimir's query parser reads them (percent-decoded,
 * `+` as a space, any bracket suffix aside).
 */
export function withoutCredentialParams(target: string): string {
  const q = target.indexOf('?');
  // Only a query naming one, as written or percent-encoded (`%61ccess_token` is `access_token` to Mimir), is rewritten.
  if (q === -1 || !/access|api|%/i.test(target.slice(q))) return target;
  const kept = target.slice(q + 1).split('&').filter((part) => {
    const eq = part.indexOf('=');
    const raw = (eq === -1 ? part : part.slice(0, eq)).replace(/\+/g, ' ');
    let name = raw;
    try { name = decodeURIComponent(raw); } catch { /* kept as written: no parser reads it as a credential name */ }
    return !CREDENTIAL_PARAMS.test(name);
  });
  return kept.length ? `${target.slice(0, q)}?${kept.join('&')}` : target.slice(0, q);
}

/** The identity headers a policy names, lower-cased once per policy rather than per request. */
const identitySets = new WeakMap<HeaderPolicy, ReadonlySet<string>>();
function identityHeaders(policy: HeaderPolicy): ReadonlySet<string> {
  let set = identitySets.get(policy);
  if (!set) {
    set = new Set([policy.userContext.idHeader, policy.userContext.emailHeader, policy.userContext.rolesHeader, policy.forwardingHeader].map((h) => h.toLowerCase()));
    identitySets.set(policy, set);
  }
  return set;
}

/** Response headers passed back to the caller. */
export function downstreamHeaders(upstream: IncomingHttpHeaders, options: { dropLength?: boolean } = {}): OutgoingHttpHeaders {
  const named = connectionTokens(upstream.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstream)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (options.dropLength && name === 'content-length') continue;
    // CORS is the hub's to decide (src/http/cors.ts): an upstream that echoes every origin with
    // credentials (Mimir's own cors setup) would open the proxied API to any web page.
    if (name.startsWith('access-control-')) continue;
    out[name] = value;
  }
  return out;
}

/** Where one request goes upstream: the upstream's origin, its Host header and the path (query included). */
export interface UpstreamTarget {
  readonly origin: string;
  /** The Host header the upstream gets: its own host and port (the port only when not the default). */
  readonly host: string;
  readonly path: string;
}

interface Base { origin: string; host: string; prefix: string }

/** MIMIR_UPSTREAM_URL parsed once, not on every request. */
const bases = new Map<string, Base>();

/**
 * The upstream target for an inbound target: `/upstream/health` reaches the upstream's own
 * `/health`; anything else goes as it came, after the base's path prefix. Verbatim, byte for
 * byte: the hub authorized this very string (src/proxy/routes.ts `checkTarget` refuses every
 * target the upstream could route differently), so no parser may rewrite it on the way.
 * Credentials written into MIMIR_UPSTREAM_URL are not sent upstream: the origin has none. A
 * target that is not a path of this origin (absolute form, `//host`) is refused, whoever calls.
 */
export function upstreamTarget(base: string, inboundUrl: string): UpstreamTarget {
  if (inboundUrl.charCodeAt(0) !== 0x2f /* / */ || inboundUrl.charCodeAt(1) === 0x2f) {
    throw new OAuthError('invalid_request', 'The request target must be a path (origin form).');
  }
  let b = bases.get(base);
  if (!b) {
    const u = new URL(base);
    b = { origin: u.origin, host: u.host, prefix: u.pathname.replace(/\/+$/, '') };
    if (bases.size > 16) bases.clear();
    bases.set(base, b);
  }
  const rewritten = inboundUrl.replace(/^\/upstream\/health(?=$|\?)/i, '/health');
  return { origin: b.origin, host: b.host, path: b.prefix + rewritten };
}

/** The upstream's final answer, as its headers arrive (undici's parsed headers: lower-case names, repeated fields as arrays). */
export interface UpstreamAnswer {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
}

export interface UpstreamCall {
  target: UpstreamTarget;
  method: string;
  /** From {@link upstreamHeaders}: Host and the body's framing are settled here. */
  headers: readonly string[];
  /** A body already read (MCP), the inbound stream to send as it arrives, or none. */
  body: Buffer | Readable | undefined;
  /**
   * The upstream's final answer, as soon as its headers arrive. Returns where its body goes: the
   * caller's response itself, or a stream the caller reads. The body is written there as it
   * arrives, with backpressure; an upstream that fails mid-body destroys it with the error (so a
   * stream of the caller's own needs an 'error' listener from the start). Should it close before
   * the body's end, the exchange is dropped.
   */
  onResponse: (answer: UpstreamAnswer) => Writable;
  /** No usable answer came (unreachable, reset, malformed): bad_gateway. Called at most once, never after onResponse. */
  onError: (e: OAuthError) => void;
}

/** A call under way. */
export interface UpstreamExchange {
  /** The caller went away: drop the upstream request or response. Idempotent. */
  abort(): void;
}

/**
 * Upstream connections, kept alive and reused. undici, not node:http's client: a proxied
 * exchange cost 54 µs of CPU through node:http.request and 34 µs through undici's dispatch,
 * measured side by side (bench/README.md). No timeout on headers or body, as node:http had
 * none: an MCP event stream stays open as long as the upstream keeps it open. HTTP/1.1 only
 * (undici 8 would negotiate HTTP/2 with an https upstream, where an aborted exchange was seen
 * to leave the upstream's stream open while the session stayed busy).
 *
 * One difference from node:http: undici refuses an upstream's `100 Continue` it did not ask for
 * (the hub never sends `Expect`), which is then a 502. Other 1xx answers are passed over.
 *
 * Loaded by {@link openUpstreamAgent} when an upstream is configured: a hub without one never holds
 * undici in memory (about 7 MB resident, issue 20 goal 7).
 */
let upstreamAgent: Dispatcher | undefined;

/** Loads undici and makes the agent, once; the proxy awaits it before its routes serve. */
export async function openUpstreamAgent(): Promise<void> {
  if (upstreamAgent) return;
  const { Agent } = await import('undici');
  upstreamAgent ??= new Agent({ headersTimeout: 0, bodyTimeout: 0, allowH2: false });
}

/**
 * Sends the request. Callbacks, not a promise or streams of undici's own: on a small proxied
 * exchange those cost more than the rest of the call.
 */
export function callUpstream(call: UpstreamCall): UpstreamExchange {
  let controller: Dispatcher.DispatchController | null = null;
  let sink: Writable | undefined;
  let done = false;
  let aborted = false;
  const fail = (e: Error & { code?: string }) => {
    if (done) return;
    done = true;
    // undici leaves a body it never started sending (the connection failed) as it was; its owner
    // learns from the stream's end that nobody reads it any more.
    if (call.body !== undefined && !Buffer.isBuffer(call.body)) call.body.destroy();
    if (sink) sink.destroy(e);
    else if (!aborted) call.onError(badGateway(`${e.code ?? e.name} ${call.target.origin}`));
  };
  const resume = () => controller?.resume();
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (aborted) c.abort(new Error('the caller went away'));
    },
    onResponseStart(c, statusCode, headers) {
      if (done) return;
      // 1xx is informational (the final answer follows); below 100 is no HTTP status at all.
      if (statusCode >= 100 && statusCode < 200) return;
      if (statusCode < 100) {
        fail(Object.assign(new Error(`status ${statusCode}`), { code: 'BAD_STATUS' }));
        c.abort(new Error('unusable upstream status'));
        return;
      }
      const out = call.onResponse({ statusCode, headers: headers as IncomingHttpHeaders });
      sink = out;
      // Closed before the end (destroyed by its reader, or the caller went away): nobody wants the
      // rest, and a paused exchange would otherwise wait for a 'drain' that never comes.
      out.once('close', () => {
        if (done) return;
        done = true;
        c.abort(new Error('the answer is no longer read'));
      });
    },
    onResponseData(c, chunk) {
      if (done || !sink) return;
      if (!sink.write(chunk)) {
        c.pause();
        sink.once('drain', resume);
      }
    },
    onResponseEnd() {
      if (done) return;
      done = true;
      sink?.end();
    },
    onResponseError(_c, e) {
      fail(e as Error & { code?: string });
    },
  };
  try {
    if (!upstreamAgent) throw new Error('the upstream agent is not open (openUpstreamAgent)');
    upstreamAgent.dispatch({
      origin: call.target.origin, path: call.target.path, method: call.method as Dispatcher.HttpMethod,
      headers: framed(call), body: call.body ?? null,
    }, handler);
  } catch (e) {
    fail(e as Error);
  }
  return {
    abort() {
      if (aborted) return;
      aborted = true;
      const e = new Error('the caller went away');
      if (controller) controller.abort(e);
      if (!done && sink) { done = true; sink.destroy(); }
    },
  };
}

function badGateway(detail: string): OAuthError {
  return new OAuthError('bad_gateway', 'The upstream Mimir server could not be reached.', { detail });
}

/**
 * The header list as sent, with Host. undici frames the body itself: a body read in full carries
 * its own length, no body carries none (or 0 where a body is expected: POST, PUT, PATCH), and a
 * streamed body keeps the caller's Content-Length, or is chunked when the caller sent it chunked.
 * So the caller's Content-Length goes on only with the stream it describes.
 */
function framed(call: UpstreamCall): string[] {
  const out = call.body === undefined || Buffer.isBuffer(call.body) ? withoutField(call.headers, 'content-length') : [...call.headers];
  out.push('host', call.target.host);
  return out;
}

function withoutField(list: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i] !== name) out.push(list[i]!, list[i + 1]!);
  return out;
}

const NONE: ReadonlySet<string> = new Set();

function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (value === undefined) return NONE;
  const v = Array.isArray(value) ? value.join(',') : value;
  return new Set(v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

function withoutCookies(header: string, names: ReadonlySet<string>): string {
  return header.split(';').map((c) => c.trim()).filter((c) => c && !names.has(c.slice(0, c.indexOf('=') === -1 ? c.length : c.indexOf('=')).trim())).join('; ');
}

/** RFC 9110 §5.5: header values are visible ASCII; anything else is percent-encoded. */
function fieldValue(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}
