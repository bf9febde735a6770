/**
 * The one writer of HTML responses: every page the hub serves (sign-in, account, consent, error
 * pages) goes out with the same headers, so none can be framed (clickjacking), cached, or run a
 * script that slipped into it. HTTP edge only.
 */
import type { FastifyReply } from 'fastify';
import { errorPage, type Brand, type ErrorView } from './render.ts';
import { RETRY_AFTER_SECONDS } from '../http/reply.ts';

export interface PageOptions {
  /**
   * Where the page's forms may submit (CSP `form-action`, which browsers also apply to the
   * redirect that answers the submission): `'self'` plus these origins. Default: the page has
   * no form, `form-action 'none'`. `'unrestricted'`: no directive, for the account page, whose
   * sign-out answers with a redirect to the IdP's end-session endpoint. `'self'`: the hub's own
   * origin only (the admin console).
   */
  formAction?: readonly string[] | 'unrestricted' | 'self';
  /** The branding the page shows: an https logo's origin joins `img-src`, nothing else does. */
  brand?: Pick<Brand, 'logoUrl'>;
  /** The page loads the hub's own script files (`script-src 'self'`: never an inline script). Default: no script at all. */
  scripts?: boolean;
}

/** The origin of an https logo, which the page must be allowed to load; none for a same-origin path. */
function logoOrigin(brand: Pick<Brand, 'logoUrl'> | undefined): string | undefined {
  const url = brand?.logoUrl;
  if (!url || url.startsWith('/')) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/** No script, nothing from elsewhere but the brand's logo, no framing (CSP Level 3; `frame-ancestors` replaces X-Frame-Options). */
export function contentSecurityPolicy(options: PageOptions = {}): string {
  const logo = logoOrigin(options.brand);
  const directives = ["default-src 'none'", ...(options.scripts ? ["script-src 'self'"] : []), "style-src 'self'", `img-src 'self'${logo ? ` ${logo}` : ''}`, "frame-ancestors 'none'", "base-uri 'none'"];
  const form = options.formAction ?? [];
  if (form === 'self') directives.push("form-action 'self'");
  else if (form !== 'unrestricted') directives.push(form.length ? `form-action 'self' ${form.join(' ')}` : "form-action 'none'");
  return directives.join('; ');
}

/** The headers of an HTML page, also for one written outside Fastify (the CLI's loopback page). */
export function pageHeaders(options: PageOptions = {}): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': contentSecurityPolicy(options),
    // For browsers without CSP frame-ancestors.
    'x-frame-options': 'DENY',
  };
}

/** Sends `html` with `status` and {@link pageHeaders}. */
export function sendPage(reply: FastifyReply, status: number, html: string, options: PageOptions = {}): FastifyReply {
  // A 503 page (a store out of reach, revocations stale) says when to try again, as JSON 503s do.
  if (status === 503) reply.header('retry-after', RETRY_AFTER_SECONDS);
  return reply.code(status).headers(pageHeaders(options)).send(html);
}

/**
 * Sends an error page that names the request id (Fastify's, also in the `x-request-id` header)
 * and writes one log line carrying the same id (`reqId`), so the id a person reads off the page
 * finds what happened. `detail` is for the log only.
 */
export function sendErrorPage(reply: FastifyReply, view: Omit<ErrorView, 'requestId'>, options: PageOptions & { brand?: Brand; detail?: string; error?: string } = {}): FastifyReply {
  const { detail, error, ...pageOptions } = options;
  const line = { status: view.status, page: view.title, ...(error ? { error } : {}), ...(detail ? { detail } : {}) };
  if (view.status >= 500) reply.log.error(line, 'error page shown');
  else reply.log.info(line, 'error page shown');
  const requestId = String(reply.request.id);
  return sendPage(reply, view.status, errorPage({ ...view, requestId }, options.brand), pageOptions);
}
