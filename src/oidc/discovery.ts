/**
 * One openid-client Configuration per provider, from discovery on its issuer (OpenID Connect
 * Discovery 1.0 §4), explicit endpoints overriding. Discovered once and kept; a failure is not
 * kept, so the next sign-in tries again once the IdP is back.
 */
import { createRemoteJWKSet } from 'jose';
import * as client from 'openid-client';
import { OAuthError } from '../errors.ts';
import { isLoopback, type ProviderSettings } from './providers.ts';

export interface DiscoveryOptions {
  /** Seconds before an IdP request is given up (openid-client `timeout`). */
  timeoutSeconds?: number;
}

export class ProviderDirectory {
  readonly #byId = new Map<string, ProviderSettings>();
  readonly #configs = new Map<string, Promise<client.Configuration>>();
  readonly #keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  readonly #timeout: number;

  constructor(providers: readonly ProviderSettings[], options: DiscoveryOptions = {}) {
    for (const p of providers) this.#byId.set(p.id, p);
    this.#timeout = options.timeoutSeconds ?? 5;
  }

  get all(): ProviderSettings[] {
    return [...this.#byId.values()];
  }

  get(id: string): ProviderSettings | undefined {
    return this.#byId.get(id);
  }

  /** The client configuration of a provider; OAuthError `bad_gateway` (502) when the IdP cannot be reached. */
  async configuration(p: ProviderSettings): Promise<client.Configuration> {
    let pending = this.#configs.get(p.id);
    if (!pending) {
      pending = discover(p, this.#timeout);
      this.#configs.set(p.id, pending);
      pending.catch(() => this.#configs.delete(p.id));
    }
    return pending;
  }

  /** The key set at a provider's published JWKS URI, fetched by jose and kept for this hub. */
  keySet(jwksUri: string): ReturnType<typeof createRemoteJWKSet> {
    let keys = this.#keySets.get(jwksUri);
    if (!keys) this.#keySets.set(jwksUri, keys = createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: this.#timeout * 1000 }));
    return keys;
  }
}

/** openid-client options for a provider: http only for loopback issuers. */
export function requestOptions(p: ProviderSettings, timeout: number): client.DiscoveryRequestOptions {
  return { timeout, ...(isLoopback(p.issuer) ? { execute: [client.allowInsecureRequests] } : {}) };
}

/**
 * A copy of a provider's configuration whose HTTP requests go through `fetchImpl`: for one
 * exchange that needs to see the raw token response (multi-tenant ID tokens, see azure.ts).
 */
export function configurationWithFetch(p: ProviderSettings, base: client.Configuration, fetchImpl: client.CustomFetch): client.Configuration {
  const c = new client.Configuration(base.serverMetadata(), p.clientId, clientMetadata(p), clientAuth(p));
  if (isLoopback(p.issuer)) client.allowInsecureRequests(c);
  c.timeout = base.timeout;
  c[client.customFetch] = fetchImpl;
  return c;
}

const clientMetadata = (p: ProviderSettings): Partial<client.ClientMetadata> => ({ redirect_uris: [p.redirectUri] });
const clientAuth = (p: ProviderSettings): client.ClientAuth => (p.clientSecret ? client.ClientSecretPost(p.clientSecret) : client.None());

async function discover(p: ProviderSettings, timeout: number): Promise<client.Configuration> {
  const metadata = clientMetadata(p);
  const auth = clientAuth(p);
  const e = p.endpoints;
  let config: client.Configuration;
  try {
    if (e.authorization && e.token && e.jwks) {
      // Everything given explicitly: no discovery needed.
      config = new client.Configuration({ issuer: p.issuerTemplate ?? p.issuer }, p.clientId, metadata, auth);
    } else if (p.issuerTemplate) {
      // Azure multi-tenant: the document at .../organizations/v2.0 publishes the issuer as
      // .../{tenantid}/v2.0, which openid-client's discovery check refuses outside Microsoft's
      // own host. Fetch the document by its full URL (no issuer comparison) and compare here.
      const wellKnown = new URL(`${p.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
      config = await client.discovery(wellKnown, p.clientId, metadata, auth, requestOptions(p, timeout));
      const published = config.serverMetadata().issuer;
      if (published !== p.issuerTemplate) throw new Error(`the discovery document names issuer ${published}, expected ${p.issuerTemplate}`);
    } else {
      config = await client.discovery(new URL(p.issuer), p.clientId, metadata, auth, requestOptions(p, timeout));
    }
  } catch (err) {
    throw new OAuthError('bad_gateway', `The identity provider "${p.name}" could not be reached or did not publish valid discovery metadata.`, {
      detail: `discovery of ${p.issuer} failed: ${describe(err)}`,
    });
  }
  const server = config.serverMetadata();
  const overrides = {
    ...(e.authorization ? { authorization_endpoint: e.authorization } : {}),
    ...(e.token ? { token_endpoint: e.token } : {}),
    ...(e.jwks ? { jwks_uri: e.jwks } : {}),
    ...(e.userinfo ? { userinfo_endpoint: e.userinfo } : {}),
    ...(e.revocation ? { revocation_endpoint: e.revocation } : {}),
    ...(e.introspection ? { introspection_endpoint: e.introspection } : {}),
    ...(e.endSession ? { end_session_endpoint: e.endSession } : {}),
  };
  if (Object.keys(overrides).length === 0) {
    if (isLoopback(p.issuer)) client.allowInsecureRequests(config);
    config.timeout = timeout;
    return config;
  }
  const merged = new client.Configuration({ ...server, ...overrides } as unknown as client.ServerMetadata, p.clientId, metadata, auth);
  if (isLoopback(p.issuer)) client.allowInsecureRequests(merged);
  merged.timeout = timeout;
  return merged;
}

/** A short, secret-free description of a failure for logs and `providers check`. */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const code = (err as { code?: string }).code ?? (cause as { code?: string } | undefined)?.code;
  const causeMsg = cause instanceof Error ? `: ${cause.message}` : '';
  return `${code ? `${code} ` : ''}${err.message}${causeMsg}`.slice(0, 300);
}
