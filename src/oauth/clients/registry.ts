/**
 * OAuth clients of the hub's authorization server (MCP clients, the CLI):
 * - dynamic client registration (RFC 7591), kept for MCP 2025-11-25 clients;
 * - client ID metadata documents (MCP 2026-07-28 primary registration): `client_id` is an https
 *   URL whose JSON document describes the client, fetched on demand and cached; a URL that failed
 *   is not fetched again for a minute (else every authorization request naming it makes the hub
 *   fetch it again: a slow URL then holds each of them for the whole deadline);
 * - the built-in public client `mimir-cli` (loopback redirects, RFC 8252).
 * An administrator lists them and revokes dynamic and metadata-document clients (src/admin): a
 * dynamic client's registration is deleted; a client_id URL is remembered as revoked (its document
 * could be fetched again at any time), and refused before any fetch.
 */
import type { JSONWebKeySet } from 'jose';
import { LruCache } from '../../cache/lru.ts';
import { digestEqual, hashSecret, randomToken } from '../../crypto/index.ts';
import { OAuthError } from '../../errors.ts';
import type { Store } from '../../storage/adapter.ts';
import { DocumentFetchError, fetchJsonDocument, type FetchLimits } from './fetch-document.ts';
import { validateClientMetadata, type OAuthClient } from './metadata.ts';

const KIND = 'oauth_client';
const DOC_CACHE = 'oauth_client_doc';
/** client_id URLs an administrator revoked: refused without a fetch, for good. */
const REVOKED = 'oauth_client_revoked';
/** The hosts client ID metadata documents may come from (one record); none set: any host. */
const CIMD_ALLOWLIST = 'cimd_allowlist';
const CIMD_ALLOWLIST_ID = 'hosts';
/** An allowlist entry: a host name, or `*.` and a domain for its subdomains. */
export const CIMD_HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*(:\d{1,5})?$/;
/** How long, and for how many URLs at most, a failed metadata document fetch is remembered. */
const FAILURE_MEMORY_MS = 60_000;
const FAILURE_MEMORY_ENTRIES = 1000;
/** Default deadline of a document fetch (MIMIR_CIMD_FETCH_TIMEOUT). */
const DEFAULT_FETCH_TIMEOUT_MS = 5000;

export const CLI_CLIENT: OAuthClient = {
  client_id: 'mimir-cli',
  client_name: 'mimir-auth CLI',
  redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback', 'http://[::1]/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  application_type: 'native',
  source: 'builtin',
};

/** A client as an administrator sees it: never its secret hash. A revoked URL client keeps only its id. */
export type ClientListing =
  | Omit<OAuthClient, 'client_secret_hash'>
  | { client_id: string; source: 'metadata-document'; revoked_at: number };

export interface ClientRegistryOptions {
  developmentMode: boolean;
  now?: () => number;
  fetchLimits?: Partial<FetchLimits>;
}

export class ClientRegistry {
  readonly #store: Store;
  readonly #limits: FetchLimits;
  readonly #now: () => number;
  /** Negative cache: client_id URL → why its document could not be used, for a minute. */
  readonly #failures: LruCache<OAuthError>;
  /** Fetches under way, so concurrent requests naming one URL share one fetch. */
  readonly #fetching = new Map<string, Promise<OAuthClient>>();

  constructor(store: Store, options: ClientRegistryOptions) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#limits = { maxBytes: 5 * 1024, timeoutMs: DEFAULT_FETCH_TIMEOUT_MS, allowPrivate: options.developmentMode, ...options.fetchLimits };
    this.#failures = new LruCache(FAILURE_MEMORY_ENTRIES, this.#now);
  }

  /** RFC 7591 §3.2.1: registers a client; a secret only for confidential clients. */
  async register(input: unknown): Promise<{ client: OAuthClient; clientSecret?: string }> {
    const m = validateClientMetadata(input, { deriveApplicationType: true });
    const clientId = `dyn_${randomToken(18)}`;
    // A secret only for the methods that use one: a private_key_jwt client authenticates by its key.
    const usesSecret = m.token_endpoint_auth_method === 'client_secret_basic' || m.token_endpoint_auth_method === 'client_secret_post';
    const clientSecret = usesSecret ? randomToken(32) : undefined;
    const client: OAuthClient = {
      client_id: clientId,
      redirect_uris: m.redirect_uris,
      grant_types: m.grant_types,
      response_types: m.response_types,
      token_endpoint_auth_method: m.token_endpoint_auth_method,
      source: 'dynamic',
      client_id_issued_at: Math.floor(this.#now() / 1000),
      ...(m.client_name ? { client_name: m.client_name } : {}),
      ...(m.client_uri ? { client_uri: m.client_uri } : {}),
      ...(m.logo_uri ? { logo_uri: m.logo_uri } : {}),
      ...(m.scope ? { scope: m.scope } : {}),
      ...(m.application_type ? { application_type: m.application_type } : {}),
      ...(m.software_id ? { software_id: m.software_id } : {}),
      ...(m.software_version ? { software_version: m.software_version } : {}),
      ...(m.token_endpoint_auth_method === 'private_key_jwt' && m.jwks !== undefined ? { jwks: m.jwks as JSONWebKeySet } : {}),
      ...(m.token_endpoint_auth_method === 'private_key_jwt' && m.jwks_uri !== undefined ? { jwks_uri: m.jwks_uri } : {}),
      ...(clientSecret ? { client_secret_hash: hashSecret(clientSecret) } : {}),
    };
    await this.#store.upsert(KIND, clientId, client);
    return clientSecret ? { client, clientSecret } : { client };
  }

  /** The client, or an OAuthError saying why it cannot be used. */
  async get(clientId: string): Promise<OAuthClient> {
    if (clientId === CLI_CLIENT.client_id) return CLI_CLIENT;
    if (/^https?:\/\//.test(clientId)) return this.#fromDocument(clientId);
    const found = await this.#store.find<OAuthClient>(KIND, clientId);
    if (!found) throw new OAuthError('invalid_client', 'The client is not registered.', { status: 400 });
    return found.payload;
  }

  /**
   * Every client the hub knows: the built-in one, dynamically registered ones, metadata documents
   * it currently holds, and revoked client_id URLs.
   */
  async list(): Promise<ClientListing[]> {
    const [dynamic, documents, revoked] = await Promise.all([
      this.#store.list<OAuthClient>(KIND), this.#store.list<OAuthClient>(DOC_CACHE), this.#store.list<{ at: number }>(REVOKED),
    ]);
    const shown = ({ client_secret_hash: _hash, ...rest }: OAuthClient) => rest;
    const revokedIds = new Set(revoked.map((r) => r.id));
    return [
      CLI_CLIENT,
      ...dynamic.map((r) => shown(r.payload)).sort((a, b) => (a.client_id_issued_at ?? 0) - (b.client_id_issued_at ?? 0)),
      ...documents.filter((r) => !revokedIds.has(r.id)).map((r) => shown(r.payload)),
      ...revoked.map((r) => ({ client_id: r.id, source: 'metadata-document' as const, revoked_at: r.payload.at })),
    ];
  }

  /**
   * Revokes a client: false when no such client is known. A dynamic client's registration goes; a
   * client_id URL is refused from now on whether or not its document was ever fetched (the URL is
   * the client's identity). The built-in client cannot be revoked (OAuthError invalid_request).
   */
  async revoke(clientId: string): Promise<boolean> {
    if (clientId === CLI_CLIENT.client_id) throw new OAuthError('invalid_request', `client_id: ${CLI_CLIENT.client_id} is built in and cannot be revoked.`);
    if (!/^https?:\/\//.test(clientId)) return this.#store.destroy(KIND, clientId);
    try {
      documentUrl(clientId);
    } catch {
      throw new OAuthError('invalid_request', 'client_id: a client_id URL must be https with a path, and no fragment or credentials.');
    }
    await this.#store.upsert(REVOKED, clientId, { at: Math.floor(this.#now() / 1000) });
    await this.#store.destroy(DOC_CACHE, clientId);
    return true;
  }

  /**
   * The hosts a client_id URL (a client ID metadata document) may name; empty: any host. Kept in
   * the store, so every instance applies the same list at once.
   */
  async cimdAllowlist(): Promise<string[]> {
    return (await this.#store.find<{ hosts: string[] }>(CIMD_ALLOWLIST, CIMD_ALLOWLIST_ID))?.payload.hosts ?? [];
  }

  /** Replaces the allowlist (entries as {@link CIMD_HOST_PATTERN}, already validated); empty: any host again. */
  async setCimdAllowlist(hosts: readonly string[]): Promise<string[]> {
    const unique = [...new Set(hosts.map((h) => h.toLowerCase()))].sort();
    await this.#store.upsert(CIMD_ALLOWLIST, CIMD_ALLOWLIST_ID, { hosts: unique });
    return unique;
  }

  /**
   * Public clients authenticate by client_id alone; confidential ones by their secret, sent with
   * the method they registered (`method`, when the caller knows how the secret came).
   */
  async authenticate(clientId: string, secret: string | undefined, method?: 'client_secret_basic' | 'client_secret_post'): Promise<OAuthClient> {
    const client = await this.get(clientId).catch(() => null);
    if (!client) throw new OAuthError('invalid_client', 'Client authentication failed.');
    if (client.token_endpoint_auth_method === 'none') {
      if (secret !== undefined) throw new OAuthError('invalid_client', 'Client authentication failed.');
      return client;
    }
    const ok = secret !== undefined && digestEqual(hashSecret(secret), client.client_secret_hash ?? '');
    if (!ok || (method !== undefined && method !== client.token_endpoint_auth_method)) throw new OAuthError('invalid_client', 'Client authentication failed.');
    return client;
  }

  async #fromDocument(clientId: string): Promise<OAuthClient> {
    const url = documentUrl(clientId);
    if (await this.#store.find(REVOKED, clientId)) throw new OAuthError('invalid_client', 'The client has been revoked.', { status: 400 });
    // Checked before the cache: a host taken off the list stops at once, fetched before or not.
    const allowed = await this.cimdAllowlist();
    if (allowed.length && !hostAllowed(url.host.toLowerCase(), allowed)) {
      throw new OAuthError('invalid_client', `This hub accepts client metadata documents only from allowed hosts, and ${url.host} is not one; ask its administrator to allow it.`, { status: 400 });
    }
    const cached = await this.#store.find<OAuthClient>(DOC_CACHE, clientId);
    if (cached) return cached.payload;
    const failed = this.#failures.get(clientId);
    if (failed) throw failed;
    let pending = this.#fetching.get(clientId);
    if (!pending) {
      pending = this.#fetchDocument(clientId, url)
        .catch((e: unknown) => {
          if (e instanceof OAuthError) this.#failures.set(clientId, e, this.#now() + FAILURE_MEMORY_MS);
          throw e;
        })
        .finally(() => this.#fetching.delete(clientId));
      this.#fetching.set(clientId, pending);
    }
    return pending;
  }

  /** Fetches, checks and caches the document at `url` (the client_id). */
  async #fetchDocument(clientId: string, url: URL): Promise<OAuthClient> {
    let fetched: Awaited<ReturnType<typeof fetchJsonDocument>>;
    try {
      fetched = await fetchJsonDocument(url, this.#limits);
    } catch (e) {
      const why = e instanceof DocumentFetchError ? e.message : 'the client_id URL could not be fetched';
      throw new OAuthError('invalid_client', `The client metadata document cannot be used: ${why}.`, { status: 400 });
    }
    const doc = fetched.json as Record<string, unknown>;
    if (!doc || typeof doc !== 'object' || doc.client_id !== clientId) {
      throw new OAuthError('invalid_client', 'The client metadata document\'s client_id differs from its URL.', { status: 400 });
    }
    if ('client_secret' in doc || 'client_secret_expires_at' in doc) {
      throw new OAuthError('invalid_client', 'A client metadata document must not contain a client secret.', { status: 400 });
    }
    const m = validateClientMetadata({ token_endpoint_auth_method: 'none', ...doc });
    if (m.token_endpoint_auth_method !== 'none') {
      throw new OAuthError('invalid_client', 'Clients identified by a metadata document authenticate with "none" here.', { status: 400 });
    }
    const client: OAuthClient = {
      client_id: clientId,
      redirect_uris: m.redirect_uris,
      grant_types: m.grant_types,
      response_types: m.response_types,
      token_endpoint_auth_method: 'none',
      source: 'metadata-document',
      ...(m.client_name ? { client_name: m.client_name } : {}),
      ...(m.client_uri ? { client_uri: m.client_uri } : {}),
      ...(m.logo_uri ? { logo_uri: m.logo_uri } : {}),
      ...(m.scope ? { scope: m.scope } : {}),
      ...(m.application_type ? { application_type: m.application_type } : {}),
    };
    // Cache per the document's max-age, between 5 minutes and a day.
    const ttl = Math.min(86400, Math.max(300, fetched.maxAgeSeconds ?? 3600));
    await this.#store.upsert(DOC_CACHE, clientId, client, ttl);
    return client;
  }
}

/** Whether `host` is on the list: named there, or a subdomain of a `*.` entry. */
function hostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((a) => (a.startsWith('*.') ? host.endsWith(a.slice(1)) : host === a));
}

/** A client_id URL in the form a client ID metadata document may have, else OAuthError invalid_client. */
function documentUrl(clientId: string): URL {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw new OAuthError('invalid_client', 'The client_id is not a valid URL.', { status: 400 });
  }
  // CIMD: the URL must have a path, and no fragment or credentials.
  if (url.pathname === '/' || url.hash || url.username || url.password) {
    throw new OAuthError('invalid_client', 'A client_id URL must be https with a path, and no fragment or credentials.', { status: 400 });
  }
  return url;
}
