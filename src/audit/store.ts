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
/** Events waiting for their batch beyond this are dropped (and counted): the store is far behind. */
const MAX_PENDING = 10_000;
/**
 * Events of every request with a credential, and of every refused one: within one batch (a second),
 * those of one credential (or refusal reason) from one address are stored as one event with a
 * `count`, so a busy key — or a flood of bad credentials — costs one write a second, not one per
 * request. The log destination still gets every line.
 */
const COALESCED = new Set(['api_key_used', 'service_account_used', 'authentication_failed']);

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
  /** Events matching the filter, on every page. */
  total: number;
  page: number;
  pages: number;
}

export class AuditStore {
  readonly #store: Store;
  readonly #ttlSeconds: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  #pending: Array<{ id: string; event: StoredAuditEvent }> = [];
  /** This batch's coalesced events, by type, credential and address. */
  #coalesced = new Map<string, StoredAuditEvent>();
  #dropped = 0;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(store: Store, options: { retentionDays: number; now?: () => number; flushMs?: number; onError?: (err: unknown) => void }) {
    this.#store = store;
    this.#ttlSeconds = options.retentionDays * 86400;
    this.#now = options.now ?? Date.now;
    this.#onError = options.onError ?? (() => {});
    this.#timer = setInterval(() => { this.flush().catch(this.#onError); }, options.flushMs ?? 1000);
    this.#timer.unref();
  }

  /** Queues one event for the next batch (an audit observer: it never throws). */
  record(event: AuditEvent): void {
    if (this.#pending.length >= MAX_PENDING) {
      this.#dropped++;
      return;
    }
    let key: string | undefined;
    if (COALESCED.has(event.type)) {
      key = `${event.type}\n${String(event.client ?? event.principal?.client_id ?? '')}\n${String(event.ip ?? '')}\n${String(event.reason ?? '')}`;
      const same = this.#coalesced.get(key);
      if (same) {
        same.details.count = Number(same.details.count ?? 1) + 1;
        return;
      }
    }
    const time = this.#now();
    const stored = toStored(event, time);
    if (key) this.#coalesced.set(key, stored);
    // Ids sort as times do: the newest first is the ids in reverse.
    this.#pending.push({ id: `${String(time).padStart(15, '0')}-${randomId(8)}`, event: stored });
  }

  /** Writes every queued event. */
  async flush(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    this.#coalesced = new Map();
    if (this.#dropped > 0) {
      const dropped = this.#dropped;
      this.#dropped = 0;
      this.#onError(new Error(`${dropped} audit events were not kept in the store: it fell ${MAX_PENDING} events behind`));
    }
    await Promise.all(batch.map(({ id, event }) => this.#store.upsert(AUDIT_EVENT_KIND, id, event, this.#ttlSeconds)));
  }

  /** Events matching `q`, newest first, one page of them. */
  async query(q: AuditQuery = {}): Promise<AuditPage> {
    const perPage = Math.min(Math.max(q.perPage ?? 50, 1), 500);
    const needle = q.principal?.trim().toLowerCase();
    const all = await this.#store.list<StoredAuditEvent>(AUDIT_EVENT_KIND);
    const matching = all
      .filter(({ payload: e }) => (q.type === undefined || e.type === q.type)
        && (q.outcome === undefined || e.outcome === q.outcome)
        && (q.from === undefined || e.time >= q.from)
        && (q.to === undefined || e.time <= q.to)
        && (!needle || [e.principal?.sub, e.principal?.client_id, e.client].some((v) => typeof v === 'string' && v.toLowerCase().includes(needle))))
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const pages = Math.max(1, Math.ceil(matching.length / perPage));
    const page = Math.min(Math.max(q.page ?? 1, 1), pages);
    return { events: matching.slice((page - 1) * perPage, page * perPage).map((r) => r.payload), total: matching.length, page, pages };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(this.#onError);
  }
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
