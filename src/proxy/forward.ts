/**
 * The request toward the upstream Mimir, framework-free: which inbound headers never pass
 * (credentials, identity claims, hop-by-hop), which the hub sets (user context from the
 * Principal, X-Forwarded-*, the forwarded token), and the streaming request itself.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
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
 * The headers sent upstream.
 *
 * @example
 * upstreamHeaders(req.headers, policy, { principal, clientIp: req.ip, proto: 'https', host: 'mimir.example' })
 */
export function upstreamHeaders(inbound: IncomingHttpHeaders, policy: HeaderPolicy, facts: ForwardFacts): OutgoingHttpHeaders {
  const identity = identityHeaders(policy);
  const named = connectionTokens(inbound.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(inbound)) {
    if (value === undefined) continue;
    const n = name.toLowerCase();
    if (HOP_BY_HOP.has(n) || named.has(n) || CREDENTIALS.has(n) || FORWARDING.has(n) || identity.has(n) || n === 'host' || n.startsWith('x-user-')) continue;
    if (n === 'cookie') {
      const kept = withoutCookie(Array.isArray(value) ? value.join('; ') : value, policy.sessionCookie);
      if (kept) out.cookie = kept;
      continue;
    }
    out[n] = value;
  }
  out['x-forwarded-for'] = facts.clientIp;
  out['x-forwarded-proto'] = facts.proto;
  out['x-forwarded-host'] = facts.host;
  if (policy.userContext.enabled) {
    const p = facts.principal;
    out[policy.userContext.idHeader.toLowerCase()] = fieldValue(p.sub);
    if (p.email) out[policy.userContext.emailHeader.toLowerCase()] = fieldValue(p.email);
    out[policy.userContext.rolesHeader.toLowerCase()] = fieldValue(p.roles.join(','));
  }
  if (facts.forwardedToken) out[policy.forwardingHeader.toLowerCase()] = facts.forwardedToken;
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

/** MIMIR_UPSTREAM_URL parsed once, not on every request. */
const bases = new Map<string, { origin: string; prefix: string }>();

/** The upstream URL for an inbound path: `/upstream/health` reaches the upstream's own `/health`. */
export function upstreamUrl(base: string, inboundUrl: string): URL {
  let b = bases.get(base);
  if (!b) {
    const u = new URL(base);
    b = { origin: u.origin, prefix: u.pathname.replace(/\/+$/, '') };
    if (bases.size > 16) bases.clear();
    bases.set(base, b);
  }
  const rewritten = inboundUrl.replace(/^\/upstream\/health(?=$|\?)/i, '/health');
  return new URL(b.prefix + rewritten, b.origin);
}

export interface UpstreamCall {
  url: URL;
  method: string;
  headers: OutgoingHttpHeaders;
  /** A body already read (MCP), or the inbound stream to pipe. */
  body: Buffer | Readable | undefined;
  /**
   * Aborts the exchange (before or during the response body) when it emits `abort`: the caller's
   * own client went away. An EventEmitter, not an AbortController: one per request costs more
   * than the rest of a small exchange.
   */
  signal?: EventEmitter;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  /** The response body, streamed as it arrives. */
  body: Readable;
}

/**
 * Upstream connections, kept alive and reused (undici: about 60 % of the CPU of a `node:http`
 * client request on the same exchange, measured here). No timeout on headers or body: an MCP
 * event stream stays open as long as the upstream keeps it open.
 */
const upstreamAgent = new Agent({ headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 4_000 });

/** Sends the request; resolves as soon as the upstream's response headers arrive. */
export async function callUpstream(call: UpstreamCall): Promise<UpstreamResponse> {
  try {
    const res = await upstreamAgent.request({
      origin: call.url.origin,
      path: call.url.pathname + call.url.search,
      method: call.method as Dispatcher.HttpMethod,
      headers: call.headers as Record<string, string | string[]>,
      body: call.body ?? null,
      ...(call.signal ? { signal: call.signal } : {}),
    });
    return { statusCode: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: res.body };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = err.code ?? err.cause?.code ?? err.name;
    throw new OAuthError('bad_gateway', 'The upstream Mimir server could not be reached.', { detail: `${code} ${call.url.origin}` });
  }
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
