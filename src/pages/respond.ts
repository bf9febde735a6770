/**
 * The one writer of HTML responses: every page the hub serves (sign-in, account, consent, error
 * pages) goes out with the same headers, so none can be framed (clickjacking), cached, or run a
 * script that slipped into it. HTTP edge only.
 */
import type { FastifyReply } from 'fastify';

export interface PageOptions {
  /**
   * Where the page's forms may submit (CSP `form-action`, which browsers also apply to the
   * redirect that answers the submission): `'self'` plus these origins. Default: the page has
   * no form, `form-action 'none'`. `'unrestricted'`: no directive, for the account page, whose
   * sign-out answers with a redirect to the IdP's end-session endpoint.
   */
  formAction?: readonly string[] | 'unrestricted';
}

/** No script, nothing from elsewhere, no framing (CSP Level 3; `frame-ancestors` replaces X-Frame-Options). */
export function contentSecurityPolicy(options: PageOptions = {}): string {
  const directives = ["default-src 'none'", "style-src 'self'", "img-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"];
  const form = options.formAction ?? [];
  if (form !== 'unrestricted') directives.push(form.length ? `form-action 'self' ${form.join(' ')}` : "form-action 'none'");
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
  return reply.code(status).headers(pageHeaders(options)).send(html);
}
