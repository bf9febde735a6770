/**
 * Express middleware for embedding the hub. Fails closed: every request reaching it needs an
 * accepted credential (and `permission`, when given), decided by the hub's one rule (src/authz);
 * mount it before the routes it protects. Sets `req.principal`; on failure answers with the
 * RFC 6750 error and `WWW-Authenticate`.
 *
 * @example
 * ```ts
 * app.use('/api', mimirAuthExpress({ hub }));
 * app.post('/api/nodes', mimirAuthExpress({ hub, permission: 'nodes:write' }), createNode);
 * ```
 */
import type { Authenticator } from '../authn/authenticate.ts';
import type { Principal } from '../authn/principal.ts';
import { Authorizer } from '../authz/index.ts';
import { refusal } from '../authz/refusal.ts';
import { toOAuthError } from '../errors.ts';
import { Rbac } from '../rbac/policy.ts';
import { formatChallenge, RETRY_AFTER_SECONDS } from './reply.ts';

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

export interface MimirAuthExpressOptions {
  /** The hub (`openHub(config)`): its authenticator and its one authorization rule. */
  hub?: { authenticator: Authenticator; authorizer: Authorizer };
  /** Without `hub`: the authenticator, and the RBAC configuration (default: Mimir's shipped rbac.json). */
  authenticator?: Authenticator;
  rbac?: Rbac;
  /** The permission every request through this middleware needs (default: any accepted credential). */
  permission?: string;
}

export function mimirAuthExpress(options: MimirAuthExpressOptions) {
  const authenticator = options?.hub?.authenticator ?? options?.authenticator;
  if (!authenticator) throw new TypeError('mimirAuthExpress: options.hub is required (from openHub(config))');
  const authorizer = options.hub?.authorizer ?? new Authorizer(options.rbac ?? new Rbac());
  const permission = options.permission ?? null;
  return (req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void): void => {
    const cookies = req.cookies ?? parseCookies(req.headers.cookie);
    const target = req.originalUrl ?? req.url;
    const known = req.principal;
    (known ? Promise.resolve(known) : authenticator.authenticate({
      headers: req.headers, cookies, method: req.method, url: `${req.protocol ?? 'http'}://${req.get?.('host') ?? ''}${target}`,
      // RFC 9449 §8.2: a fresh DPoP nonce goes out with the answer.
      dpopNonce: (nonce) => { res.setHeader('DPoP-Nonce', nonce); },
    }))
      .then((principal) => {
        const decision = authorizer.decide(principal, { permission, path: target.split('?')[0]! });
        if (!decision.allowed) throw refusal(decision);
        req.principal = principal;
        next();
      })
      .catch((e: unknown) => {
        const err = toOAuthError(e);
        if (err.challenge) res.setHeader('WWW-Authenticate', formatChallenge(err.challenge));
        for (const [name, value] of Object.entries(err.headers ?? {})) res.setHeader(name, value);
        if (err.status === 503) res.setHeader('Retry-After', RETRY_AFTER_SECONDS);
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
