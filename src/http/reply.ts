/** Turning OAuthErrors into RFC 6749 §5.2 / RFC 6750 §3 responses. HTTP edge only. */
import type { FastifyReply } from 'fastify';
import { OAuthError, toOAuthError } from '../errors.ts';

/** RFC 6750 §3: `Bearer realm="mimir", error="invalid_token", error_description="..."`. */
export function formatChallenge(params: Record<string, string>): string {
  const { scheme = 'Bearer', ...rest } = params;
  const parts = Object.entries(rest).map(([k, v]) => `${k}="${v.replace(/[\\"]/g, '\\$&').replace(/[\r\n]/g, ' ')}"`);
  return parts.length ? `${scheme} ${parts.join(', ')}` : scheme;
}

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const err = toOAuthError(e);
  if (err.status >= 500 && err.error === 'server_error') {
    reply.log.error({ detail: err.detail }, 'unexpected error');
  } else if (err.detail) {
    reply.log.info({ error: err.error, detail: err.detail }, 'request refused');
  }
  // RFC 9728 §5.1: a protected resource points clients at its metadata in every challenge.
  const extras = (reply.request as { challengeExtras?: Record<string, string> } | undefined)?.challengeExtras;
  if (err.challenge) reply.header('www-authenticate', formatChallenge(extras && (err.status === 401 || err.status === 403) ? { ...extras, ...err.challenge } : err.challenge));
  else if (err.status === 401 && err.error === 'invalid_client') reply.header('www-authenticate', 'Basic realm="mimir"');
  return reply.code(err.status).header('cache-control', 'no-store').type('application/json').send(err.toJSON());
}

/** RFC 6749 §5.1: token responses must not be cached. */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

export { OAuthError };
