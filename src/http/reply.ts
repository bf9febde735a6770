/** Turning OAuthErrors into RFC 6749 §5.2 / RFC 6750 §3 responses. HTTP edge only. */
import type { FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { OAuthError, toOAuthError } from '../errors.ts';

/** The security headers every hub response carries, after its `x-request-id`. */
export const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' } as const;

/** The headers every hub response carries, for one written outside Fastify. */
export function baseHeaders(requestId: string): Record<string, string> {
  return { 'x-request-id': requestId, ...SECURITY_HEADERS };
}

/** RFC 6750 §3: `Bearer realm="mimir", error="invalid_token", error_description="..."`. */
export function formatChallenge(params: Record<string, string>): string {
  const { scheme = 'Bearer', ...rest } = params;
  // RFC 6750 §3: printable ASCII only (a header holds nothing else: an MCP tool named "€" in a
  // refusal's scope was a 500); quotes and backslashes escaped (RFC 9110 §5.6.4).
  const parts = Object.entries(rest).map(([k, v]) => `${k}="${v.replace(/[\\"]/g, '\\$&').replace(/[^\x20-\x7e]/g, '?')}"`);
  return parts.length ? `${scheme} ${parts.join(', ')}` : scheme;
}

/**
 * RFC 9110 §10.2.3: a 503 says when to come back. One second: a store failing over or a revocation
 * channel resyncing is back within seconds, and clients retry on their own schedule anyway.
 */
export const RETRY_AFTER_SECONDS = '1';

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = toOAuthError(e);
  logRefusal(reply.log, err);
  if (err.status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  // RFC 9728 §5.1: a protected resource points clients at its metadata in every challenge.
  const extras = (reply.request as { challengeExtras?: Record<string, string> } | undefined)?.challengeExtras;
  const challenge = challengeOf(err, extras);
  if (challenge) reply.header('www-authenticate', challenge);
  for (const [name, value] of Object.entries(err.headers ?? {})) reply.header(name, value);
  return reply.code(err.status).header('cache-control', 'no-store').type('application/json').send(err.toJSON());
}

/** A server error at error level, a refusal with a detail at info level (the detail is logged, never sent). */
function logRefusal(log: Pick<Logger, 'error' | 'info'>, err: OAuthError, bindings: Record<string, unknown> = {}): void {
  if (err.status >= 500 && err.error === 'server_error') log.error({ ...bindings, detail: err.detail }, 'unexpected error');
  else if (err.detail) log.info({ ...bindings, error: err.error, detail: err.detail }, 'request refused');
}

/** The WWW-Authenticate value of a refusal, if it carries one. */
function challengeOf(err: OAuthError, extras?: Record<string, string>): string | undefined {
  if (err.challenge) return formatChallenge(extras && (err.status === 401 || err.status === 403) ? { ...extras, ...err.challenge } : err.challenge);
  if (err.status === 401 && err.error === 'invalid_client') return 'Basic realm="mimir"';
  return undefined;
}

/**
 * {@link sendError} for a response written outside Fastify (src/http/fast-path.ts): the same
 * status, headers (after `base`, the headers every response carries) and body.
 */
export function writeError(res: ServerResponse, base: Record<string, unknown>, e: unknown, log: Logger): void {
  const err = toOAuthError(e);
  logRefusal(log, err, { request_id: base['x-request-id'] });
  const body = JSON.stringify(err.toJSON());
  const headers: Record<string, unknown> = { ...base };
  const challenge = challengeOf(err);
  if (challenge) headers['www-authenticate'] = challenge;
  Object.assign(headers, err.headers);
  if (err.status === 503) headers['retry-after'] = RETRY_AFTER_SECONDS;
  headers['cache-control'] = 'no-store';
  headers['content-type'] = 'application/json; charset=utf-8';
  headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(err.status, headers as OutgoingHttpHeaders);
  res.end(body);
}

/** RFC 6749 §5.1: token responses must not be cached. */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

export { OAuthError };
