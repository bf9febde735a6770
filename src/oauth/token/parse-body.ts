import { OAuthError } from '../../errors.ts';

export type Params = Record<string, string>;

/**
 * RFC 6749 §3.2: form-encoded parameters, none repeated. JSON bodies are accepted too
 * (several HTTP clients of Mimir send JSON), with string values only.
 */
export function parseBody(body: unknown): Params {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded parameters.');
  }
  const out: Params = {};
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (Array.isArray(value)) {
      // RFC 8707 §2 and RFC 8693 §2.1 allow several; a token of the hub is for one (invalid_target, RFC 8707 §2.2).
      if (key === 'resource' || key === 'audience') throw new OAuthError('invalid_target', `Send one ${key}: a token of the hub is for one.`);
      throw new OAuthError('invalid_request', `The parameter "${key.slice(0, 64)}" is repeated.`);
    }
    if (value === undefined || value === null || value === '') continue; // RFC 6749 §3.1: empty = omitted
    if (typeof value !== 'string') throw new OAuthError('invalid_request', `The parameter "${key.slice(0, 64)}" must be a string.`);
    out[key] = value;
  }
  return out;
}
