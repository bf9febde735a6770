/**
 * The audit log kept in the hub store as well as written to its destination, so the admin console
 * reads every instance's events wherever it runs. Each event is a record of kind `audit_event`
 * (a table row on SQLite and PostgreSQL, a key on Redis: the Store contract) with a time-ordered id
 * and a TTL of MIMIR_AUDIT_RETENTION_DAYS: Redis expires it natively, the cleanup job (src/jobs)
 * purges it from SQLite, PostgreSQL and memory.
 *
 * Recording costs the request nothing but an array push: events are written in batches every
 * second (and when the hub closes). What is stored is what the log line carries, scrubbed the same
 * way (src/audit/index.ts `scrub`): never a token, secret or key.
 */
import { randomId } from '../crypto/index.ts';
import type { Store } from '../storage/adapter.ts';
import { scrub, type AuditEvent } from './index.ts';

export const AUDIT_EVENT_KIND = 'audit_event';
/**
 * Events waiting for their batch beyond this are dropped (and counted): the store is far behind.
 * Failures and everything else have a budget each, so a flood of refusals never crowds out an
 * administrator's change or a sign-in.
 */
const MAX_PENDING = 10_000;
const MAX_PENDING_FAILURES = 2_000;
/**
 * Failure events kept in the store per client address per minute (after coalescing); beyond it
 * they are dropped, counted (the `onDropped` metric) and summed up in one stored
 * `audit_events_dropped` event per batch. The log destination still gets every line.
 */
export const FAILURES_PER_IP_PER_MINUTE = 120;
/** What a query keeps at most: the newest this many events matching its filter. */
export const QUERY_CAP = 10_000;
/**
 * Events of every request with a credential: within one batch (a second), those of one credential
 * from one address are stored as one event with a `count`, so a busy key costs one write a second,
 * not one per request. Every failure (outcome `failure`) is coalesced the same way by type, reason,
 * address (and the principal, when one was authenticated): an anonymous flood costs at most one
 * stored event per (type, reason, address) a second. The log destination still gets every line.
 *
 * Successful introspections too (RFC 7662: a resource server asks on each request it serves), by
 * caller, address and answer (`active`): one stored event per resource server a second, with its
 * `count`, and the `jti` only while every introspection it counts was of that one token. An event
 * stored per introspection was the largest part of the hub's CPU per introspection (measured on
 * `serve`, SQLite: 122-142 µs per request with it, 113-118 without) and grew the store by every
 * request a resource server served.
 */
const COALESCED = new Set(['api_key_used', 'service_account_used', 'introspection']);

/** An audit event as stored and shown: the log line's fields, with its time. */
export interface StoredAuditEvent {
  /** Epoch milliseconds. */
  time: number;
  type: string;
  outcome: 'success' | 'failure';
  reason?: string;
  principal?: { sub: string; auth_method: string; client_id?: string; provider?: string };
  client?: string;
  ip?: string;
  request_id?: string;
  /** The event's other (non-secret) fields: action, target, permission, grant type... */
  details: Record<string, unknown>;
}

/** What the console filters the audit log by; every field optional. */
export interface AuditQuery {
  /** Part of the principal's sub or client id (case-insensitive). */
  principal?: string;
  type?: string;
  outcome?: 'success' | 'failure';
  /** Epoch milliseconds, inclusive. */
  from?: number;
  to?: number;
  /** 1-based. */
  page?: number;
  perPage?: number;
}

export interface AuditPage {
  events: StoredAuditEvent[];
  /** Events matching the filter, on every page (at most {@link QUERY_CAP}: see `capped`). */
  total: number;
  page: number;
  pages: number;
  /** More than {@link QUERY_CAP} events matched: only the newest of them are paged through. */
  capped?: boolean;
}

export class AuditStore {
  readonly #store: Store;
  readonly #ttlSeconds: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  readonly #onDropped: (reason: 'backlog' | 'ip_cap', count: number) => void;
  #pending: Array<{ id: string; event: StoredAuditEvent }> = [];
  #pendingFailures = 0;
  /** This batch's coalesced events, by type, credential (or reason) and address. */
  #coalesced = new Map<string, StoredAuditEvent>();
  #dropped = 0;
  /** Failure events stored this minute, by address; cleared when the minute turns. */
  #failuresByIp = new Map<string, number>();
  #minute = -1;
  /** Failure events over the per-address cap this batch, by address. */
  #capped = new Map<string, number>();
  readonly #timer: ReturnType<typeof setInterval>;
  /** The flush under way (or the last one), settled: the next one starts after it. */
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: Store, options: { retentionDays: number; now?: () => number; flushMs?: number; onError?: (err: unknown) => void; onDropped?: (reason: 'backlog' | 'ip_cap', count: number) => void }) {
    this.#store = store;
    this.#ttlSeconds = options.retentionDays * 86400;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#onDropped = options.onDropped ?? (() => {});
    this.#timer = setInterval(() => { this.flush().catch(this.#onError); }, options.flushMs ?? 1000);
    this.#timer.unref();
  }

  /** Queues one event for the next batch (an audit observer: it never throws). */
  record(event: AuditEvent): void {
    const failure = event.outcome === 'failure';
    // JSON of the fields, so no value (an IdP's `sub` is anyone's string) can pass for another's. The
    // principal is its sub, provider and method: one sub at two IdPs is two people (subs are not
    // namespaced), and the stored event shows the first one's.
    const p = event.principal;
    const who = p ? [p.sub, p.provider, p.auth_method] : undefined;
    let key: string | undefined;
    try {
      if (failure) {
        key = JSON.stringify(['failure', event.type, event.reason, event.ip, who]);
      } else if (COALESCED.has(event.type)) {
        key = JSON.stringify([event.type, event.client ?? p?.client_id, who, event.ip, event.reason, event.active]);
      }
    } catch {
      // A field JSON cannot write (a BigInt, a cycle): the event is kept on its own, never thrown.
      key = undefined;
    }
    const same = key === undefined ? undefined : this.#coalesced.get(key);
    if (same) {
      same.details.count = Number(same.details.count ?? 1) + 1;
      // A jti names the one token every counted event was about, or none.
      if ('jti' in same.details && scrub(event.jti) !== same.details.jti) delete same.details.jti;
      return;
    }
    if (failure ? this.#pendingFailures >= MAX_PENDING_FAILURES : this.#pending.length - this.#pendingFailures >= MAX_PENDING) {
      this.#dropped++;
      this.#onDropped('backlog', 1);
      return;
    }
    const time = this.#now();
    if (failure && !this.#withinIpCap(String(event.ip ?? ''), time)) return;
    const stored = toStored(event, time);
    if (key) this.#coalesced.set(key, stored);
    if (failure) this.#pendingFailures++;
    this.#pending.push({ id: eventId(time), event: stored });
  }

  /** Counts a failure event of `ip` this minute; false (dropped and counted) beyond the cap. */
  #withinIpCap(ip: string, time: number): boolean {
    const minute = Math.floor(time / 60_000);
    if (minute !== this.#minute) {
      this.#minute = minute;
      this.#failuresByIp = new Map();
    }
    const n = (this.#failuresByIp.get(ip) ?? 0) + 1;
    this.#failuresByIp.set(ip, n);
    if (n <= FAILURES_PER_IP_PER_MINUTE) return true;
    this.#capped.set(ip, (this.#capped.get(ip) ?? 0) + 1);
    this.#onDropped('ip_cap', 1);
    return false;
  }

  /**
   * Writes every queued event (and one summary of the failures dropped over the per-address cap).
   * Flushes run one after another: one asked for while another is under way (the timer's, when the
   * hub closes) starts when it ends, so `close()` returns only once every batch is in the store.
   */
  flush(): Promise<void> {
    const next = this.#flushing.then(() => this.#write());
    this.#flushing = next.catch(() => undefined);
    return next;
  }

  async #write(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingFailures = 0;
    this.#coalesced = new Map();
    if (this.#capped.size > 0) {
      const byIp = [...this.#capped].sort((a, b) => b[1] - a[1]);
      this.#capped = new Map();
      const time = this.#now();
      const dropped = byIp.reduce((a, [, n]) => a + n, 0);
      batch.push({
        id: eventId(time),
        event: {
          time, type: 'audit_events_dropped', outcome: 'failure', reason: 'failures_per_ip_cap',
          details: { count: dropped, per_ip_per_minute: FAILURES_PER_IP_PER_MINUTE, ips: Object.fromEntries(byIp.slice(0, 20)) },
        },
      });
    }
    if (this.#dropped > 0) {
      const dropped = this.#dropped;
      this.#dropped = 0;
      this.#onError(new Error(`${dropped} audit events were not kept in the store: it fell ${MAX_PENDING} events behind`));
    }
    // One transaction per chunk on SQLite: a record a commit held its event loop for seconds under load.
    await this.#store.upsertMany(batch.map(({ id, event }) => ({ kind: AUDIT_EVENT_KIND, id, payload: event, ttlSeconds: this.#ttlSeconds })));
  }

  /**
   * Events matching `q`, newest first, one page of them. The stored events are scanned a page at a
   * time (Store.scan) and at most the newest {@link QUERY_CAP} matching ones kept while reading (then
   * `capped`): a query's memory and sorting are bounded however large the log has grown. An event
   * the scan yields twice (Redis, when its keyspace is resized meanwhile) is counted and shown once.
   */
  async query(q: AuditQuery = {}): Promise<AuditPage> {
    const perPage = Math.min(Math.max(q.perPage ?? 50, 1), 500);
    const needle = q.principal?.trim().toLowerCase();
    const matches = (e: StoredAuditEvent) => (q.type === undefined || e.type === q.type)
      && (q.outcome === undefined || e.outcome === q.outcome)
      && (q.from === undefined || e.time >= q.from)
      && (q.to === undefined || e.time <= q.to)
      && (!needle || [e.principal?.sub, e.principal?.client_id, e.client].some((v) => typeof v === 'string' && v.toLowerCase().includes(needle)));
    const newestFirst = (a: { id: string }, b: { id: string }) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
    let kept: Array<{ id: string; payload: StoredAuditEvent }> = [];
    let capped = false;
    /** Once cut: the oldest id kept. An event no newer can never be shown, nor can a repeat of it. */
    let floor: string | undefined;
    /** Sorted newest first, repeats of an id dropped, cut to the newest QUERY_CAP. */
    const trim = () => {
      kept = kept.sort(newestFirst).filter((r, i, all) => i === 0 || r.id !== all[i - 1]!.id);
      if (kept.length > QUERY_CAP) {
        kept = kept.slice(0, QUERY_CAP);
        capped = true;
        floor = kept[QUERY_CAP - 1]!.id;
      }
    };
    for await (const r of this.#store.scan<StoredAuditEvent>(AUDIT_EVENT_KIND)) {
      if (floor !== undefined && r.id <= floor) continue;
      if (!matches(r.payload)) continue;
      kept.push({ id: r.id, payload: r.payload });
      // Never more than twice the cap held: trimmed to the newest QUERY_CAP as it grows.
      if (kept.length >= 2 * QUERY_CAP) trim();
    }
    trim();
    const pages = Math.max(1, Math.ceil(kept.length / perPage));
    const page = Math.min(Math.max(q.page ?? 1, 1), pages);
    return { events: kept.slice((page - 1) * perPage, page * perPage).map((r) => r.payload), total: kept.length, page, pages, ...(capped ? { capped } : {}) };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(this.#onError);
  }
}

/** Ids sort as times do: the newest first is the ids in reverse. */
function eventId(time: number): string {
  return `${String(time).padStart(15, '0')}-${randomId(8)}`;
}

function toStored(event: AuditEvent, time: number): StoredAuditEvent {
  const { type, outcome, reason, principal, client, ip, request_id: requestId, ...rest } = scrub(event) as AuditEvent;
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) details[k] = v;
  return {
    time, type, outcome,
    ...(typeof reason === 'string' ? { reason } : {}),
    ...(principal ? {
      principal: {
        sub: principal.sub, auth_method: principal.auth_method,
        ...(principal.client_id ? { client_id: principal.client_id } : {}), ...(principal.provider ? { provider: principal.provider } : {}),
      },
    } : {}),
    ...(typeof client === 'string' ? { client } : {}),
    ...(typeof ip === 'string' ? { ip } : {}),
    ...(typeof requestId === 'string' ? { request_id: requestId } : {}),
    details,
  };
}
