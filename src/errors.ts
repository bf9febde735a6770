/**
 * One error type for the protocol. `error` is the RFC 6749 §5.2 / RFC 6750 §3.1 code,
 * `description` is safe to show to the caller, `detail` is for logs only and never sent.
 * Tests assert on `error`, never on the message.
 */
import { StoreUnavailableError } from './storage/adapter.ts';

export const ErrorCodes = {
  // RFC 6749 §5.2 (token endpoint)
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  // RFC 6749 §4.1.2.1 (authorization endpoint)
  access_denied: 403,
  unsupported_response_type: 400,
  // RFC 6750 §3.1 (protected resources)
  invalid_token: 401,
  insufficient_scope: 403,
  // RFC 9470 §3 (step-up authentication)
  insufficient_user_authentication: 401,
  // the seed's contract: an expired token is told apart so clients know to refresh
  token_expired: 401,
  // RFC 8693 §2.2.2
  invalid_target: 400,
  // RFC 7591 §3.2.2
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  // RFC 9449 §5, §7.1
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
  // RFC 7009 §2.2.1
  unsupported_token_type: 400,
  // hub-level
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  request_header_too_large: 431,
  too_many_requests: 429,
  bad_gateway: 502,
  service_unavailable: 503,
  temporarily_unavailable: 503,
  server_error: 500,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class OAuthError extends Error {
  readonly error: ErrorCode;
  readonly status: number;
  readonly description: string;
  /** Logged, never sent. */
  readonly detail: string | undefined;
  /** Extra fields for the JSON body (e.g. `missing_permission`) — never secrets. */
  readonly extra: Record<string, unknown> | undefined;
  /** Parameters for a `WWW-Authenticate` header, when this error challenges. */
  readonly challenge: Record<string, string> | undefined;
  /** Other response headers the refusal needs (RFC 9449 §8: `DPoP-Nonce`) — never secrets. */
  readonly headers: Record<string, string> | undefined;

  constructor(
    error: ErrorCode,
    description: string,
    options: { status?: number; detail?: string; extra?: Record<string, unknown>; challenge?: Record<string, string>; headers?: Record<string, string> } = {},
  ) {
    // A refusal is an expected answer, not a fault: no stack trace (capturing one was the largest
    // cost of refusing a request, which matters when a flood of bad credentials comes in).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(description);
    Error.stackTraceLimit = limit;
    this.name = 'OAuthError';
    this.error = error;
    this.status = options.status ?? ErrorCodes[error];
    this.description = description;
    this.detail = options.detail;
    this.extra = options.extra;
    this.challenge = options.challenge;
    this.headers = options.headers;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.error, error_description: this.description, ...this.extra };
  }
}

/** A StoreUnavailableError, or an error caused by one (a few wrappers deep). */
function isStoreUnavailable(e: unknown): boolean {
  for (let depth = 0, c = e; depth < 4 && c instanceof Error; depth++, c = c.cause) {
    if (c instanceof StoreUnavailableError) return true;
  }
  return false;
}

export function isOAuthError(e: unknown): e is OAuthError {
  return e instanceof OAuthError;
}

/**
 * Anything unexpected becomes `server_error` without leaking what happened — except a store that
 * cannot be reached, which is no fault of the request and passes: `temporarily_unavailable` 503
 * (RFC 6749 §5.2 / §4.1.2.1; the edge adds Retry-After), never a 500.
 */
export function toOAuthError(e: unknown): OAuthError {
  if (e instanceof OAuthError) return e;
  if (isStoreUnavailable(e)) {
    return new OAuthError('temporarily_unavailable', 'The hub cannot reach its store right now; retry shortly.', {
      detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
  }
  return new OAuthError('server_error', 'The server encountered an unexpected condition.', {
    detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
  });
}
