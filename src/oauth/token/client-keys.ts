/**
 * The public keys a client authenticates with (private_key_jwt, RFC 7523 §2.2): a JWK Set held
 * in its registration (`jwks`), or one fetched from its `jwks_uri` (RFC 7591 §2). Fetched sets
 * are kept per URI for their `max-age` (five minutes to an hour); an assertion signed with a key
 * the kept set lacks fetches the set again, at most once per cooldown, so a client's key rotation
 * is seen within seconds and an attacker's unknown `kid`s do not make the hub hammer the URI.
 *
 * Every fetch goes through the SSRF-safe fetcher of client ID metadata documents
 * (src/oauth/clients/fetch-document.ts): the host is resolved once and each address checked, size
 * and time are bounded, redirects are not followed. A URI a client registered dynamically is
 * untrusted (no private or loopback addresses outside development mode); one an administrator
 * set on a service account is trusted with private addresses (an internal key server), still
 * https or loopback http only.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { LruCache } from '../../cache/lru.ts';
import { publicJwksProblem } from '../../jwt/assertions.ts';
import { DocumentFetchError, fetchJsonDocument, type FetchLimits } from '../clients/fetch-document.ts';

/** Where a client's keys are: inline, or at a URI. */
export interface KeySource {
  jwks?: JSONWebKeySet | undefined;
  jwksUri?: string | undefined;
}

/** A client's keys could not be obtained; `detail` is for the log. */
export class ClientKeysUnavailable extends Error {}

const MIN_CACHE_MS = 5 * 60_000;
const MAX_CACHE_MS = 60 * 60_000;
/** Least time between two fetches of one URI forced by an unknown key. */
const REFETCH_COOLDOWN_MS = 30_000;
const CACHE_ENTRIES = 1000;
/** How long a URI whose set could not be had is not fetched again (a slow URI would hold every request). */
const FAILURE_MEMORY_MS = 30_000;
const MAX_BYTES = 64 * 1024;

interface Fetched {
  keys: JWTVerifyGetKey;
  fetchedAt: number;
}

export interface ClientKeysOptions {
  now?: () => number;
  /** Deadline of one fetch, body included. */
  timeoutMs: number;
  /** Development mode: dynamically registered URIs may be loopback or private too. */
  developmentMode: boolean;
  /** Extra trusted CA certificates (PEM). */
  ca?: string;
}

export class ClientKeys {
  readonly #now: () => number;
  readonly #untrusted: FetchLimits;
  readonly #trusted: FetchLimits;
  readonly #cache: LruCache<Fetched>;
  readonly #failures: LruCache<ClientKeysUnavailable>;
  readonly #fetching = new Map<string, Promise<Fetched>>();

  constructor(options: ClientKeysOptions) {
    this.#now = options.now ?? Date.now;
    const base = { maxBytes: MAX_BYTES, timeoutMs: options.timeoutMs, ...(options.ca ? { ca: options.ca } : {}) };
    this.#untrusted = { ...base, allowPrivate: options.developmentMode };
    this.#trusted = { ...base, allowPrivate: true };
    this.#cache = new LruCache(CACHE_ENTRIES, this.#now);
    this.#failures = new LruCache(CACHE_ENTRIES, this.#now);
  }

  /**
   * A jose key resolver over the client's keys. `trusted`: an administrator configured the source.
   * Throws ClientKeysUnavailable (from the resolver) when the set cannot be fetched or is no public
   * JWK Set; jose's JWKSNoMatchingKey when no key fits the assertion's header.
   */
  resolver(source: KeySource, trusted: boolean): JWTVerifyGetKey {
    if (source.jwks) return createLocalJWKSet(source.jwks);
    const uri = source.jwksUri;
    if (!uri) return () => { throw new ClientKeysUnavailable('the client has no keys'); };
    // Trusted and untrusted fetches never share an entry: what a trusted fetch reached (a private
    // address) is never handed to a client that registered the same URI itself.
    const key = `${trusted ? 'trusted' : 'client'} ${uri}`;
    return async (header, token) => {
      let fetched = this.#cache.get(key) ?? await this.#fetch(key, uri, trusted);
      try {
        return await fetched.keys(header, token);
      } catch (e) {
        // A key the kept set lacks: the client may have rotated. Fetch again, once per cooldown.
        if (!(e instanceof errors.JWKSNoMatchingKey) || this.#now() - fetched.fetchedAt < REFETCH_COOLDOWN_MS) throw e;
        fetched = await this.#fetch(key, uri, trusted);
        return fetched.keys(header, token);
      }
    };
  }

  /** Fetches and keeps the set at `uri`; concurrent callers share one fetch; a failure is remembered. */
  async #fetch(key: string, uri: string, trusted: boolean): Promise<Fetched> {
    const failed = this.#failures.get(key);
    if (failed) throw failed;
    let pending = this.#fetching.get(key);
    if (!pending) {
      pending = this.#load(key, uri, trusted)
        .catch((e: unknown) => {
          if (e instanceof ClientKeysUnavailable) this.#failures.set(key, e, this.#now() + FAILURE_MEMORY_MS);
          throw e;
        })
        .finally(() => this.#fetching.delete(key));
      this.#fetching.set(key, pending);
    }
    return pending;
  }

  async #load(key: string, uri: string, trusted: boolean): Promise<Fetched> {
    let result: Awaited<ReturnType<typeof fetchJsonDocument>>;
    try {
      result = await fetchJsonDocument(new URL(uri), trusted ? this.#trusted : this.#untrusted);
    } catch (e) {
      throw new ClientKeysUnavailable(`jwks_uri: ${e instanceof DocumentFetchError ? e.message : 'cannot be fetched'}`);
    }
    const problem = publicJwksProblem(result.json);
    if (problem) throw new ClientKeysUnavailable(`jwks_uri: the document ${problem}`);
    const now = this.#now();
    const fetched = { keys: createLocalJWKSet(result.json as JSONWebKeySet), fetchedAt: now };
    const ttl = Math.min(MAX_CACHE_MS, Math.max(MIN_CACHE_MS, (result.maxAgeSeconds ?? 0) * 1000));
    this.#cache.set(key, fetched, now + ttl);
    return fetched;
  }
}
