import { OAuthError } from '../../errors.ts';
import type { ServiceAccountRecord, ServiceAccounts } from '../../service-accounts/index.ts';
import type { Params } from './parse-body.ts';

export interface ClientCredentials {
  clientId: string;
  secret: string;
  method: 'client_secret_basic' | 'client_secret_post';
}

/** RFC 6749 §2.3.1: client_secret_basic or client_secret_post, never both. */
export function readClientCredentials(params: Params, authorization: string | undefined): ClientCredentials | null {
  const basic = authorization && /^basic /i.test(authorization) ? authorization.slice(6).trim() : undefined;
  if (basic !== undefined && params.client_secret !== undefined) {
    throw new OAuthError('invalid_request', 'Use one client authentication method, not both Basic and client_secret.');
  }
  if (basic !== undefined) {
    let decoded: string;
    try {
      decoded = Buffer.from(basic, 'base64').toString('utf8');
    } catch {
      throw new OAuthError('invalid_client', 'Client authentication failed.');
    }
    const colon = decoded.indexOf(':');
    if (colon < 1) throw new OAuthError('invalid_client', 'Client authentication failed.');
    // The credentials are form-urlencoded before Basic encoding (RFC 6749 §2.3.1).
    const clientId = safeDecode(decoded.slice(0, colon));
    const secret = safeDecode(decoded.slice(colon + 1));
    if (params.client_id !== undefined && params.client_id !== clientId) {
      throw new OAuthError('invalid_request', 'client_id differs from the authenticated client.');
    }
    return { clientId, secret, method: 'client_secret_basic' };
  }
  if (params.client_secret !== undefined) {
    if (!params.client_id) throw new OAuthError('invalid_client', 'Client authentication failed.');
    return { clientId: params.client_id, secret: params.client_secret, method: 'client_secret_post' };
  }
  return null;
}

/** Authenticates a confidential client; the same invalid_client answer whichever part was wrong. */
export async function authenticateClient(
  creds: ClientCredentials | null, accounts: ServiceAccounts, enabled: boolean,
  find?: (clientId: string) => Promise<ServiceAccountRecord | null>,
): Promise<ServiceAccountRecord> {
  if (!creds) throw new OAuthError('invalid_client', 'Client authentication is required.');
  const account = enabled ? await accounts.authenticate(creds.clientId, creds.secret, find) : null;
  if (!account) throw new OAuthError('invalid_client', 'Client authentication failed.');
  return account;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
