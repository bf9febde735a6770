/**
 * The request toward the upstream Mimir, framework-free: which inbound headers never pass
 * (credentials, identity claims, hop-by-hop), which the hub sets (user context from the
 * Principal, X-Forwarded-*, the forwarded token), and the streaming request itself.
 */
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type RequestOptions } from 'node:http';
import { urlToHttpOptions } from 'node:url';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type { Principal } from '../authn/principal.ts';
import { OAuthError } from '../errors.ts';

/** RFC 9110 §7.6.1 hop-by-hop fields, plus the non-standard ones proxies still see. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'expect']);
/** Inbound credentials: the upstream must never see them (MCP forbids token passthrough). */
const CREDENTIALS = new Set(['authorization', 'x-api-key', 'dpop']);
/** Set by the hub from what it verified; an inbound value would be a claim nobody checked. */
const FORWARDING = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip']);

export interface HeaderPolicy {
  sessionCookie: string;
  userContext: { enabled: boolean; idHeader: string; emailHeader: string; rolesHeader: string };
  forwardingHeader: string;
}

export interface ForwardFacts {
  principal: Principal;
  clientIp: string;
  proto: string;
  host: string;
  /** The caller's IdP token, when token forwarding applies. */
  forwardedToken?: string | undefined;
}

/**
 * The headers sent upstream, as a flat list `[name, value, …]` (the form of `rawHeaders`):
 * http.request writes such a list as it is, where an object costs a validated setHeader call
 * per field. Host is not in it: {@link callUpstream} adds the upstream's own, last, where
 * node:http would.
 *
 * @example
 * upstreamHeaders(req.headers, policy, { principal, clientIp: req.ip, proto: 'https', host: 'mimir.example' })
 */
export function upstreamHeaders(inbound: IncomingHttpHeaders, policy: HeaderPolicy, facts: ForwardFacts): string[] {
  const identity = identityHeaders(policy);
  const named = connectionTokens(inbound.connection);
  const out: string[] = [];
  for (const name in inbound) {
    const value = inbound[name];
    if (value === undefined) continue;
    const n = name.toLowerCase();
    if (HOP_BY_HOP.has(n) || named.has(n) || CREDENTIALS.has(n) || FORWARDING.has(n) || identity.has(n) || n === 'host' || n.startsWith('x-user-')) continue;
    if (n === 'cookie') {
      const kept = withoutCookie(Array.isArray(value) ? value.join('; ') : value, policy.sessionCookie);
      if (kept) out.push(n, kept);
    } else if (Array.isArray(value)) {
      for (const v of value) out.push(n, v);
    } else {
      out.push(n, value);
    }
  }
  out.push('x-forwarded-for', facts.clientIp, 'x-forwarded-proto', facts.proto, 'x-forwarded-host', facts.host);
  if (policy.userContext.enabled) {
    const p = facts.principal;
    out.push(policy.userContext.idHeader.toLowerCase(), fieldValue(p.sub));
    if (p.email) out.push(policy.userContext.emailHeader.toLowerCase(), fieldValue(p.email));
    out.push(policy.userContext.rolesHeader.toLowerCase(), fieldValue(p.roles.join(',')));
  }
  if (facts.forwardedToken) out.push(policy.forwardingHeader.toLowerCase(), facts.forwardedToken);
  return out;
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
    out[name] = value;
  }
  return out;
}

/** Where one request goes upstream: http.request's options (path included), and the origin for messages. */
export interface UpstreamTarget {
  readonly origin: string;
  /** The Host header the upstream gets: its own host and port (the port only when not the default). */
  readonly host: string;
  readonly options: Readonly<RequestOptions>;
}

interface Base { origin: string; host: string; prefix: string; options: RequestOptions }

/** MIMIR_UPSTREAM_URL parsed once, not on every request. */
const bases = new Map<string, Base>();

/**
 * Inbound URLs that WHATWG URL parsing would leave as they are (no dot segments, no `//`, nothing
 * it percent-encodes or folds, no fragment, no empty query), so the upstream path is the string
 * itself. test/proxy/upstream-target.test.ts holds the two to the same answer. Anything
 * else goes through `new URL()`.
 */
const VERBATIM = /^(?!.*\/\.\.?(?:\/|\?|$))(?!.*\/\/)\/[A-Za-z0-9\-._~!$&()*+,;=:@/]*(?:\?[A-Za-z0-9\-._~!$&()*+,;=:@/?%]+)?$/;

/**
 * The upstream target for an inbound URL: `/upstream/health` reaches the upstream's own `/health`.
 * http.request gets an options object (a URL costs it ~5 µs per request in urlToHttpOptions).
 */
export function upstreamTarget(base: string, inboundUrl: string): UpstreamTarget {
  let b = bases.get(base);
  if (!b) {
    const u = new URL(base);
    // Host and port only: credentials written into MIMIR_UPSTREAM_URL are not sent upstream.
    const { protocol, hostname, port } = urlToHttpOptions(u);
    const options: RequestOptions = { protocol, hostname };
    if (port !== undefined) options.port = port;
    b = { origin: u.origin, host: u.host, prefix: u.pathname.replace(/\/+$/, ''), options };
    if (bases.size > 16) bases.clear();
    bases.set(base, b);
  }
  const rewritten = inboundUrl.replace(/^\/upstream\/health(?=$|\?)/i, '/health');
  let path: string;
  if (VERBATIM.test(rewritten)) {
    path = b.prefix + rewritten;
  } else {
    const u = new URL(b.prefix + rewritten, b.origin);
    path = u.pathname + u.search;
  }
  return { origin: b.origin, host: b.host, options: { ...b.options, path } };
}

export interface UpstreamCall {
  target: UpstreamTarget;
  method: string;
  /** From {@link upstreamHeaders}: Host is added here. */
  headers: readonly string[];
  /** A body already read (MCP), the inbound stream to pipe, or none. */
  body: Buffer | Readable | undefined;
  /** The upstream response, as soon as its headers arrive. */
  onResponse: (res: IncomingMessage) => void;
  /** The upstream could not be reached (no response came): bad_gateway. Called at most once. */
  onError: (e: OAuthError) => void;
}

/**
 * Sends the request and returns it, so the caller can destroy it when its own client goes away.
 * Callbacks, not a promise or an AbortSignal: on a small proxied exchange, those cost more than
 * the rest of the call.
 */
export function callUpstream(call: UpstreamCall): ClientRequest {
  const send = call.target.options.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = send({ ...call.target.options, method: call.method, headers: framed(call) });
  let answered = false;
  req.once('response', (res: IncomingMessage) => {
    answered = true;
    call.onResponse(res);
  });
  // `on`, not `once`: a socket can fail more than once, and an 'error' nobody listens to would end the process.
  req.on('error', (e: NodeJS.ErrnoException) => {
    if (answered) return; // the response's own stream reports what happens to its body
    answered = true;
    call.onError(new OAuthError('bad_gateway', 'The upstream Mimir server could not be reached.', { detail: `${e.code ?? e.name} ${call.target.origin}` }));
  });
  const body = call.body;
  if (body === undefined) req.end();
  else if (Buffer.isBuffer(body)) req.end(body);
  else {
    body.once('error', () => req.destroy());
    body.pipe(req);
  }
  return req;
}

/** Methods whose request node:http sends without a body length when there is none (RFC 9110 §8.6). */
const NO_BODY_LENGTH = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

/**
 * The header list as written, with Host last and the body's framing. http.request writes a list
 * at once, before `end()` could tell it the body's length, so that is set here: a body read in
 * full carries its own length, no body carries none (or 0 where a body is expected, as node:http
 * writes for an object), and a streamed body keeps the caller's Content-Length, or is chunked
 * when the caller sent it chunked.
 */
function framed(call: UpstreamCall): string[] {
  const body = call.body;
  const out = body === undefined || Buffer.isBuffer(body) ? withoutField(call.headers, 'content-length') : [...call.headers];
  if (Buffer.isBuffer(body)) out.push('content-length', String(body.length));
  else if (body === undefined && !NO_BODY_LENGTH.has(call.method)) out.push('content-length', '0');
  out.push('Host', call.target.host);
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

function withoutCookie(header: string, name: string): string {
  return header.split(';').map((c) => c.trim()).filter((c) => c && c.slice(0, c.indexOf('=') === -1 ? c.length : c.indexOf('=')).trim() !== name).join('; ');
}

/** RFC 9110 §5.5: header values are visible ASCII; anything else is percent-encoded. */
function fieldValue(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}
