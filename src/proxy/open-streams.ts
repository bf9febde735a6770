/**
 * The proxied streams that are open (server-sent events, the MCP GET stream), by the credential
 * that opened them. When that credential is revoked, its session ends, its API key is revoked or
 * its service account is disabled — on any instance: the revocation list's and the store's
 * messages say so — its streams are closed at once, and when it expires, at its expiry: an open
 * stream is not a way to keep access after losing it.
 */
import type { ServerResponse } from 'node:http';
import { API_KEY_REVOKED_CHANNEL } from '../api-keys/index.ts';
import { isServiceAccount, type Principal } from '../authn/principal.ts';
import type { RevocationList } from '../revocation/index.ts';
import { SERVICE_ACCOUNT_CHANNEL, type ServiceAccounts } from '../service-accounts/index.ts';
import { SESSION_ENDED_CHANNEL } from '../sessions/sessions.ts';
import type { Store } from '../storage/adapter.ts';

interface Open {
  principal: Principal;
  res: ServerResponse;
  /** Ends the stream when the credential expires. */
  expiry?: ReturnType<typeof setTimeout>;
}

/** The longest a timer waits (setTimeout's limit); a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long a revocation is remembered for requests authenticated before it and still under way (an
 * MCP body arriving, an upstream's answer on its way), and how many at most. A request older than
 * what is remembered is taken as revoked: it authenticates again.
 */
const RECENT_MS = 5 * 60_000;
const RECENT_MAX = 10_000;

export class OpenStreams {
  readonly #open = new Set<Open>();
  readonly #serviceAccounts: Pick<ServiceAccounts, 'get'>;
  /** The clock credentials expire by (the hub's). */
  readonly #now: () => number;
  /** The revocations of the last {@link RECENT_MS} (performance.now() times), oldest first. */
  readonly #recent: Array<{ at: number; match: (p: Principal) => boolean }> = [];
  /** Revocations before this time may have been forgotten. */
  #horizon = -Infinity;

  private constructor(serviceAccounts: Pick<ServiceAccounts, 'get'>, now: () => number) {
    this.#serviceAccounts = serviceAccounts;
    this.#now = now;
  }

  static async watch(deps: { store: Store; sessionStore?: Store; revocations: RevocationList; serviceAccounts: Pick<ServiceAccounts, 'get'>; now?: () => number }): Promise<OpenStreams> {
    const streams = new OpenStreams(deps.serviceAccounts, deps.now ?? Date.now);
    deps.revocations.onRevoked((entry) => {
      if (entry.type === 'jti') streams.#revoked((p) => p.auth_method !== 'api-key' && p.credential_id === entry.id);
      // A sign-in session or a refresh family: every token it produced, the session cookie too.
      if (entry.type === 'sid') streams.#revoked((p) => p.sid === entry.id || p.fid === entry.id);
      // A signing key: a Principal does not say which key signed its token, so every hub JWT's
      // (an emergency; their clients open them again, with tokens of the keys still trusted).
      if (entry.type === 'kid') streams.#revoked((p) => p.auth_method === 'jwt');
    });
    await (deps.sessionStore ?? deps.store).subscribe(SESSION_ENDED_CHANNEL, (sid) => streams.#revoked((p) => p.sid === sid));
    await deps.store.subscribe(API_KEY_REVOKED_CHANNEL, (id) => streams.#revoked((p) => p.auth_method === 'api-key' && p.credential_id === id));
    await deps.store.subscribe(SERVICE_ACCOUNT_CHANNEL, (clientId) => { void streams.#accountChanged(clientId); });
    return streams;
  }

  /**
   * Watches `res` for as long as it is open. `since`: when `principal` was authenticated
   * (performance.now()); a stream whose credential was revoked after that, before it opened, is
   * cut off at once.
   */
  add(principal: Principal, res: ServerResponse, since?: number): void {
    if (since !== undefined && this.revokedSince(principal, since)) {
      res.destroy();
      return;
    }
    const entry: Open = { principal, res };
    this.#open.add(entry);
    res.once('close', () => {
      this.#open.delete(entry);
      clearTimeout(entry.expiry);
    });
    if (principal.expires_at !== undefined) this.#endAtExpiry(entry, principal.expires_at * 1000);
  }

  /** Cuts `entry` off once the clock reaches `at` (epoch ms): its credential is no longer accepted anywhere. */
  #endAtExpiry(entry: Open, at: number): void {
    const wait = at - this.#now();
    if (!(wait > 0)) {
      if (this.#open.delete(entry)) entry.res.destroy();
      return;
    }
    entry.expiry = setTimeout(() => this.#endAtExpiry(entry, at), Math.min(wait, MAX_TIMER_MS));
    entry.expiry.unref();
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * Every open stream, cut off as {@link closeWhere} does: this hub lost contact with its
   * revocation channel (src/revocation/contact.ts), so none of them is known to be still allowed.
   */
  closeAll(): number {
    this.forgetBefore(performance.now());
    return this.closeWhere(() => true);
  }

  /**
   * Revocations before `time` (performance.now()) may have been missed (the revocation channel was
   * lost, or resynced after a gap): every request authenticated before it is taken as revoked
   * ({@link revokedSince}).
   */
  forgetBefore(time: number): void {
    this.#horizon = Math.max(this.#horizon, time);
  }

  /**
   * Every open stream ended cleanly (the final chunk sent, as if the upstream had ended it): the
   * server is draining (SIGTERM). The caller's client reconnects to another instance. Resolves
   * once each has finished; the relay's own listeners then drop the upstream exchange.
   */
  async endAll(): Promise<void> {
    const ending = [...this.#open].map(({ res }) => new Promise<void>((resolve) => {
      if (res.writableFinished || res.destroyed) return resolve();
      res.once('close', () => resolve());
      // A chunk the upstream sends between end() and 'close' is written after the end: dropped, not thrown.
      res.on('error', () => undefined);
      res.end();
    }));
    this.#open.clear();
    await Promise.all(ending);
  }

  closeWhere(match: (p: Principal) => boolean): number {
    let closed = 0;
    for (const entry of this.#open) {
      if (!match(entry.principal)) continue;
      this.#open.delete(entry);
      // Ends the stream as a network failure would: the client sees it end and must authenticate again.
      entry.res.destroy();
      closed++;
    }
    return closed;
  }

  /**
   * Whether `principal`, authenticated at `since` (performance.now()), may have lost its credential
   * since: a revocation heard after `since` names it, or `since` is older than what is remembered.
   * For a request still under way when it was authenticated (its body arriving).
   */
  revokedSince(principal: Principal, since: number): boolean {
    if (since < this.#horizon) return true;
    for (let i = this.#recent.length - 1; i >= 0; i--) {
      const r = this.#recent[i]!;
      if (r.at < since) return false;
      if (r.match(principal)) return true;
    }
    return false;
  }

  /** A credential lost: its streams end, and requests authenticated before now and still under way can ask ({@link revokedSince}). */
  #revoked(match: (p: Principal) => boolean): void {
    const now = performance.now();
    const recent = this.#recent;
    recent.push({ at: now, match });
    let drop = 0;
    while (drop < recent.length && (recent.length - drop > RECENT_MAX || recent[drop]!.at < now - RECENT_MS)) drop++;
    if (drop > 0) {
      this.forgetBefore(recent[drop - 1]!.at);
      recent.splice(0, drop);
    }
    this.closeWhere(match);
  }

  /** A disabled or deleted account: its own tokens and those it obtained for users stop. */
  async #accountChanged(clientId: string): Promise<void> {
    const account = await this.#serviceAccounts.get(clientId).catch(() => null);
    if (account && !account.disabled) return;
    this.#revoked((p) => p.client_id === clientId && (isServiceAccount(p) || p.act !== undefined));
  }
}
