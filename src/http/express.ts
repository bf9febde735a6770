/**
 * Express middleware for embedding the authenticator. Sets `req.principal`; on failure answers
 * with the RFC 6750 error and `WWW-Authenticate`.
 *
 * @example
 * ```ts
 * app.use('/api', mimirAuthExpress({ authenticator: hub.authenticator }));
 * ```
 */
import type { Authenticator } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import { toOAuthError } from '../errors.ts';
import { formatChallenge } from './reply.ts';

interface ExpressLikeRequest {
  headers: Record<string, string | string[] | undefined>;
  method: string;
  originalUrl?: string;
  url: string;
  protocol?: string;
  cookies?: Record<string, string>;
  get?(name: string): string | undefined;
  principal?: Principal;
}
interface ExpressLikeResponse {
  status(code: number): ExpressLikeResponse;
  setHeader(name: string, value: string): unknown;
  json(body: unknown): unknown;
}

export function mimirAuthExpress(options: { authenticator: Authenticator }) {
  if (!options?.authenticator) throw new TypeError('mimirAuthExpress: options.authenticator is required');
  return (req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void): void => {
    const cookies = req.cookies ?? parseCookies(req.headers.cookie);
    options.authenticator.authenticate({ headers: req.headers, cookies, method: req.method, url: `${req.protocol ?? 'http'}://${req.get?.('host') ?? ''}${req.originalUrl ?? req.url}` })
      .then((principal) => { req.principal = principal; next(); })
      .catch((e: unknown) => {
        const err = toOAuthError(e);
        if (err.challenge) res.setHeader('WWW-Authenticate', formatChallenge(err.challenge));
        res.setHeader('Cache-Control', 'no-store');
        res.status(err.status).json(err.toJSON());
      });
  };
}

function parseCookies(header: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const text = Array.isArray(header) ? header.join('; ') : header ?? '';
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) {
      try { out[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim()); } catch { /* skip malformed */ }
    }
  }
  return out;
}
