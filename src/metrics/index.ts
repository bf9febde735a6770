/**
 * Prometheus metrics of the hub (prom-client), one registry per hub so several hubs can share a
 * process. Counters are fed from audit events (one source of truth for what happened) and from the
 * HTTP edge (authentications and their latency). Per-credential request counts are buffered in
 * memory and added to the Store every few seconds, so they add up across instances without a write
 * per request.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditEvent } from '../audit/index.ts';
import type { CacheLookups } from '../cache/lru.ts';
import type { Store } from '../storage/adapter.ts';
import { RecentActivity } from './recent.ts';
import { REQUEST_COUNT_KIND, type CountedCredential } from './request-counts.ts';


export interface AuthMetricsOptions {
  store: Store;
  /** Live sessions right now, when a session store is plugged in. */
  activeSessions?: () => Promise<number>;
  /** Seconds since the revocation channel was last confirmed (src/revocation/contact.ts). */
  revocationStaleness?: () => number;
  flushMs?: number;
  onError?: (err: unknown) => void;
  /** The clock of the last hour's activity ({@link AuthMetrics.recent}). */
  now?: () => number;
}

export class AuthMetrics {
  readonly registry = new Registry();
  readonly #store: Store;
  readonly #pending = new Map<string, number>();
  readonly #onError: (err: unknown) => void;
  readonly #timer: ReturnType<typeof setInterval> | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #caches = new Map<string, () => CacheLookups>();
  activeSessions: (() => Promise<number>) | undefined;
  /** Requests, denials and tokens issued minute by minute over the last hour (the admin console's chart). */
  readonly recent: RecentActivity;

  readonly authentications: Counter<'method' | 'result'>;
  readonly validationSeconds: Histogram<'method'>;
  readonly tokensIssued: Counter<'grant_type'>;
  readonly refreshes: Counter<'result'>;
  readonly reuseDetections: Counter;
  readonly revocations: Counter<'token_type'>;
  readonly jwksFetches: Counter<'result'>;
  readonly cacheLookups: Counter<'cache' | 'result'>;
  /** Audit events not kept in the store: over the per-address failure cap, or the store far behind. */
  readonly auditDropped: Counter<'reason'>;

  constructor(options: AuthMetricsOptions) {
    this.#store = options.store;
    this.#onError = options.onError ?? (() => {});
    this.activeSessions = options.activeSessions;
    this.recent = new RecentActivity(options.now);
    const registers = [this.registry];
    this.authentications = new Counter({ name: 'mimir_auth_authentications_total', help: 'Authentications by credential method and result', labelNames: ['method', 'result'], registers });
    this.validationSeconds = new Histogram({
      name: 'mimir_auth_token_validation_duration_seconds', help: 'Time to authenticate a request, by credential method', labelNames: ['method'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    });
    this.tokensIssued = new Counter({ name: 'mimir_auth_tokens_issued_total', help: 'Access tokens issued, by grant type', labelNames: ['grant_type'], registers });
    this.refreshes = new Counter({ name: 'mimir_auth_refreshes_total', help: 'Refresh token uses, by result', labelNames: ['result'], registers });
    this.reuseDetections = new Counter({ name: 'mimir_auth_refresh_reuse_detected_total', help: 'Rotated-out refresh tokens presented (each revoked a family)', registers });
    this.revocations = new Counter({ name: 'mimir_auth_revocations_total', help: 'Credentials revoked, by token type', labelNames: ['token_type'], registers });
    this.jwksFetches = new Counter({ name: 'mimir_auth_jwks_fetches_total', help: 'Identity provider JWKS fetches, by result', labelNames: ['result'], registers });
    this.auditDropped = new Counter({ name: 'mimir_auth_audit_events_dropped_total', help: 'Audit events not kept in the store (still written to the log), by reason: ip_cap or backlog', labelNames: ['reason'], registers });
    // Read from the caches' own counts when scraped: nothing is counted here per request.
    const caches = this.#caches;
    this.cacheLookups = new Counter({
      name: 'mimir_auth_cache_lookups_total', help: 'Cache lookups, by cache and result (hit or miss)', labelNames: ['cache', 'result'], registers,
      collect() {
        this.reset();
        for (const [cache, read] of caches) {
          const c = read();
          this.inc({ cache, result: 'hit' }, c.hits);
          this.inc({ cache, result: 'miss' }, c.misses);
        }
      },
    });
    new Gauge({
      name: 'mimir_auth_cache_hit_ratio', help: 'Share of cache lookups that hit, by cache', labelNames: ['cache'], registers,
      collect() {
        for (const [cache, read] of caches) {
          const c = read();
          this.set({ cache }, c.hits + c.misses === 0 ? 0 : c.hits / (c.hits + c.misses));
        }
      },
    });
    const sessions = () => this.activeSessions;
    new Gauge({
      name: 'mimir_auth_active_sessions', help: 'Live sign-in sessions', registers,
      async collect() {
        const count = sessions();
        if (count) this.set(await count().catch(() => 0));
      },
    });
    const staleness = options.revocationStaleness;
    new Gauge({
      name: 'mimir_auth_revocation_staleness_seconds',
      help: 'Seconds since this hub last confirmed its revocation channel (a heartbeat through the store\'s pub/sub); past MIMIR_REVOCATION_MAX_STALENESS it answers 503. 0 for in-process stores',
      registers,
      collect() { this.set(staleness?.() ?? 0); },
    });
    const every = options.flushMs ?? 5000;
    if (every > 0) {
      this.#timer = setInterval(() => { this.flush().catch(this.#onError); }, every);
      this.#timer.unref();
    }
  }

  /** Counts one authentication and how long it took. */
  authenticated(method: string, ok: boolean, seconds: number): void {
    this.authentications.inc({ method, result: ok ? 'success' : 'failure' });
    this.recent.add('requests');
    this.validationSeconds.observe({ method }, seconds);
  }

  /** Reports a cache's hits and misses (read when the metrics are scraped). */
  watchCache(cache: string, lookups: () => CacheLookups): void {
    this.#caches.set(cache, lookups);
  }

  /** One more request made with this API key or service account (buffered). */
  countRequest(kind: CountedCredential, id: string): void {
    const key = `${kind}.${id}`;
    this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
  }

  /** Feeds the counters from the audit trail: whatever is audited is counted the same way. */
  observe(event: AuditEvent): void {
    const ok = event.outcome === 'success';
    switch (event.type) {
      case 'token_issued':
        if (ok) {
          this.tokensIssued.inc({ grant_type: String(event.grant_type ?? 'unknown') });
          this.recent.add('tokens');
        }
        break;
      case 'access_denied':
      case 'authentication_failed':
        this.recent.add('denials');
        break;
      case 'refresh':
        this.refreshes.inc({ result: ok ? 'success' : 'failure' });
        break;
      case 'refresh_reuse_detected':
        this.reuseDetections.inc();
        break;
      case 'revocation':
        if (ok) this.revocations.inc({ token_type: String(event.token_type ?? 'unknown') });
        break;
      default:
    }
  }

  /** Adds the buffered request counts to the Store. */
  /** Writes the buffered request counts; flushes run one after another (close() waits for the one under way). */
  flush(): Promise<void> {
    const next = this.#flushing.then(() => this.#write());
    this.#flushing = next.catch(() => undefined);
    return next;
  }

  async #write(): Promise<void> {
    const batch = [...this.#pending];
    this.#pending.clear();
    await this.#store.incrementMany(REQUEST_COUNT_KIND, batch);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.flush().catch(this.#onError);
  }
}
