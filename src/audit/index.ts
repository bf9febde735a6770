/**
 * The audit log: one JSON line per authentication event (time, outcome, reason code, principal,
 * client, source IP, request id) at MIMIR_AUTH_LOG_LEVEL, to stdout and/or MIMIR_AUDIT_LOG_FILE.
 * Never a token, secret or key: credentials are named by jti, key id or a hash prefix. As a last
 * line of defence, fields named like credentials and values shaped like tokens are redacted.
 *
 * `principal` is who did it, always `{sub, auth_method, client_id?, act?, provider?}`. A change made
 * through the admin HTTP API names the caller's Principal and carries `ip` and `request_id`; the same
 * change made with the CLI (which works on the store directly) names the operating-system user who
 * ran it, `{"sub": "cli:<os user>", "auth_method": "cli"}` (see {@link cliPrincipal}), with no ip or
 * request id. Admin changes write the same `type` (and `action`) whichever surface made them.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import pino from 'pino';
import type { Config } from '../config/index.ts';
import type { Principal } from '../authn/principal.ts';

export type AuditEventType =
  | 'login' | 'logout' | 'token_issued' | 'refresh' | 'refresh_reuse_detected' | 'revocation'
  | 'api_key_used' | 'service_account_used' | 'authentication_failed' | 'access_denied'
  | 'user_context_asserted' | 'user_context_ignored' | 'introspection' | 'admin' | 'signing_key_rotated';

/** Who did it: a Principal of the hub, or the operating-system user of the CLI. */
export type AuditPrincipal = Pick<Principal, 'sub' | 'auth_method' | 'client_id' | 'act' | 'provider'> | CliPrincipal;

/** The CLI actor: admin commands run by someone with the machine (and so the store) in hand. */
export interface CliPrincipal {
  sub: `cli:${string}`;
  auth_method: 'cli';
  client_id?: undefined;
  act?: undefined;
  provider?: undefined;
}

/** @example cliPrincipal('alice') // { sub: 'cli:alice', auth_method: 'cli' } */
export function cliPrincipal(user: string): CliPrincipal {
  return { sub: `cli:${user}`, auth_method: 'cli' };
}

export interface AuditEvent {
  type: AuditEventType;
  outcome: 'success' | 'failure';
  /** Machine-readable reason (an OAuth error code, or e.g. `reuse_detected`). */
  reason?: string;
  principal?: AuditPrincipal | undefined;
  client?: string | undefined;
  ip?: string | undefined;
  request_id?: string | undefined;
  /** Extra non-secret details (grant type, jti, key id, permission...). */
  [key: string]: unknown;
}

export interface Audit {
  record(event: AuditEvent): void;
  flush(): Promise<void>;
  /** Adds an observer of every event (written or not). */
  observe(observer: AuditObserver): void;
}

const LEVEL_OF: Record<AuditEvent['outcome'], 'info' | 'warn'> = { success: 'info', failure: 'warn' };
/** pino's level numbers (the `level` of every line; MIMIR_AUTH_LOG_LEVEL is the least written). */
const LEVEL_NUMBER: Record<Config['audit']['level'], number> = { debug: 20, info: 30, warn: 40, error: 50 };

let isoMs = 0;
let isoText = '';
/** `new Date().toISOString()`, made once per millisecond (as pino's isoTime writes it). */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) { isoMs = now; isoText = new Date(now).toISOString(); }
  return isoText;
}

/**
 * One line's object in pino's key order: level, time, `log`, the event's fields, `event`, built in
 * one pass and scrubbed as {@link scrub} would (the principal as `{sub, auth_method, client_id,
 * act, provider}`). The line's own fields keep their place and value: an event field named
 * `level`, `time` or `log` never stands in for them (pino wrote both, and a last-wins reader took
 * the event's).
 */
function lineFor(level: number, time: string, event: AuditEvent): Record<string, unknown> {
  const line: Record<string, unknown> = { level, time, log: 'audit' };
  for (const k in event) {
    if (!Object.hasOwn(event, k) || k === 'level' || k === 'time' || k === 'log') continue;
    let v = event[k];
    if (k === 'principal') {
      // Projected as before (a falsy one left out, as it was).
      const p = v as AuditPrincipal | undefined;
      v = p ? { sub: p.sub, auth_method: p.auth_method, client_id: p.client_id, act: p.act, provider: p.provider } : undefined;
    }
    line[k] = scrubField(k, v, 0);
  }
  line.event = event.type;
  return line;
}

/** What a field's name says of its value (memoized: the same few names come on every line). */
const PLAIN = 0;
const SECRET = 1;
const PUBLIC_ID = 2;
const fieldNames = new Map<string, number>();
function fieldName(k: string): number {
  let kind = fieldNames.get(k);
  if (kind === undefined) {
    kind = SECRET_FIELD.test(k) ? SECRET : PUBLIC_ID_FIELD.test(k) ? PUBLIC_ID : PLAIN;
    if (fieldNames.size < 1000) fieldNames.set(k, kind);
  }
  return kind;
}

/** One field of an object at `depth`, scrubbed as {@link scrub} scrubs it. */
function scrubField(k: string, v: unknown, depth: number): unknown {
  switch (fieldName(k)) {
    case SECRET: return v !== undefined ? '[redacted]' : v;
    case PUBLIC_ID: if (typeof v === 'string') return v; break;
    default:
  }
  return typeof v === 'string' ? (tokenShaped(v) ? '[redacted]' : v) : scrub(v, depth + 1);
}

/** Called for every event, written or not (metrics count what the audit log records). */
export type AuditObserver = (event: AuditEvent) => void;

/**
 * `stdoutFd`: where "stdout" goes (default 1). The CLI writes its audit lines to the file instead
 * (src/cli/admin.ts `withHub`), so its own output stays parseable.
 * `observers`: see {@link AuditObserver}; set later with `audit.observe(fn)` too.
 */
export function createAudit(config: Config, options: { stdoutFd?: number; observers?: AuditObserver[] } = {}): Audit {
  const observers = [...(options.observers ?? [])];
  const observe = (event: AuditEvent) => {
    for (const o of observers) {
      try { o(event); } catch { /* an observer never breaks the request */ }
    }
  };
  if (!config.audit.enabled) return { record: observe, async flush() {}, observe: (o) => void observers.push(o) };
  // minLength 1 still writes every line at once; unlike 0, it makes a destination's flush(cb) wait
  // until what was written has reached the file (with 0, sonic-boom calls back immediately).
  const destinations: Array<ReturnType<typeof pino.destination>> = [];
  const dest = config.audit.destination;
  if (dest === 'stdout' || dest === 'both') destinations.push(pino.destination({ fd: options.stdoutFd ?? 1, sync: false, minLength: 1 }));
  if (dest === 'file' || dest === 'both') {
    mkdirSync(dirname(config.audit.file), { recursive: true, mode: 0o700 });
    // The audit log names people and what they did: readable by the hub's user only.
    closeSync(openSync(config.audit.file, 'a', 0o600));
    chmodSync(config.audit.file, 0o600);
    destinations.push(pino.destination({ dest: config.audit.file, sync: false, mkdir: true, minLength: 1 }));
  }
  // Lines are gathered for the rest of this turn of the event loop and written once, together, to
  // each destination: under load, one write (one thread-pool hop, one system call) per turn instead
  // of one per authenticated request, and a line still leaves within the turn it was recorded in.
  // Measured (perf task-clock of `serve` on SQLite, /auth/me with an API key, 32 connections,
  // alternating runs): 48–50 µs of CPU per request before, 41–44 after.
  let pending: string[] = [];
  const release = () => {
    if (pending.length === 0) return;
    const text = pending.length === 1 ? pending[0]! : pending.join('');
    pending = [];
    for (const d of destinations) d.write(text);
  };
  const gathered = (line: string) => {
    if (pending.push(line) === 1) setImmediate(release);
  };
  const atExit = () => {
    release();
    for (const d of destinations) { try { d.flushSync(); } catch { /* nothing more can be done at exit */ } }
  };
  gatheredAtExit.add(new WeakRef(atExit));
  // The line pino would write (level, time, `log`, the event's fields, `event`; undefined fields
  // left out), serialized by one JSON.stringify of an object built in that order: pino's own path
  // (level dispatch, hooks, a stringify per field) cost about 3 µs of each authenticated request's
  // CPU and the ISO time another 0.5 (now made once per millisecond). Measured in process, one
  // API-key event: 5.9 µs per record before, see CHANGELOG for after.
  const threshold = LEVEL_NUMBER[config.audit.level];
  return {
    record(event) {
      observe(event);
      const level = LEVEL_NUMBER[LEVEL_OF[event.outcome]];
      if (level < threshold) return;
      const time = isoNow();
      let line: string;
      try {
        line = JSON.stringify(lineFor(level, time, event));
      } catch {
        // A detail JSON cannot write (a cycle, a BigInt): the event is still recorded — who, from
        // where, what and why, scrubbed as every line is — without its other details.
        const { type, outcome, reason, client, ip, request_id } = event;
        line = JSON.stringify(lineFor(level, time, { type, outcome, reason, principal: event.principal, client, ip, request_id, detail: 'unserializable' }));
      }
      gathered(`${line}\n`);
    },
    /** Resolves once every line recorded so far is written (pino's multistream has no flush of its own). */
    async flush() {
      void atExit; // held as long as this audit log is, so the exit hook below can still reach it
      release();
      await Promise.all(destinations.map((d) => new Promise<void>((resolve) => d.flush(() => resolve()))));
    },
    observe: (o) => void observers.push(o),
  };
}

/**
 * A process that exits (not killed) writes what every audit log had gathered in its last turn,
 * synchronously. Weak, so an audit log nobody holds any more (a closed hub in tests) is not kept.
 */
const gatheredAtExit = new Set<WeakRef<() => void>>();
process.once('exit', () => {
  for (const ref of gatheredAtExit) ref.deref()?.();
});

/** Field names that only ever hold credentials. */
const SECRET_FIELD = /^(token|access_token|refresh_token|id_token|subject_token|actor_token|client_secret|secret|password|api_key|key|dpop|proof|authorization|cookie|code)$/i;
/** Fields holding public identifiers that happen to look random (RFC 7638 thumbprints). */
const PUBLIC_ID_FIELD = /^(kid|jkt)$/;
/** A compact JWS/JWE, a Mimir API key, or a long opaque random string. */
const TOKEN_SHAPED = /^(eyJ[\w-]*\.[\w-]*\.[\w-]*(\.[\w-]*\.[\w-]*)?|mimir_[a-z0-9]{16}_[\w-]{43}|[\w-]{40,})$/;

/** Objects and arrays nested deeper than this are written as {@link TOO_DEEP}, never unread. */
const MAX_DEPTH = 6;
export const TOO_DEEP = '[too deep]';

/**
 * Redacts credential-named fields and token-shaped values, at any depth: an object or array nested
 * deeper than {@link MAX_DEPTH} is replaced as a whole (it was written unscrubbed before).
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return tokenShaped(value) ? '[redacted]' : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const k in value) {
    if (Object.hasOwn(value, k)) out[k] = scrubField(k, (value as Record<string, unknown>)[k], depth);
  }
  return out;
}

/** {@link TOKEN_SHAPED}, without the regular expression for what cannot match: under 40 characters, only a JWS or JWE can. */
function tokenShaped(s: string): boolean {
  if (s.length < 40 && !s.startsWith('eyJ')) return false;
  return TOKEN_SHAPED.test(s);
}
