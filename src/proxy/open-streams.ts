/**
 * The proxied streams that are open (server-sent events, the MCP GET stream), by the credential
 * that opened them. When that credential is revoked, its session ends, its API key is revoked or
 * its service account is disabled — on any instance: the revocation list's and the store's
 * messages say so — its streams are closed at once: an open stream is not a way to keep access
 * after losing it.
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
}

export class OpenStreams {
  readonly #open = new Set<Open>();
  readonly #serviceAccounts: Pick<ServiceAccounts, 'get'>;

  private constructor(serviceAccounts: Pick<ServiceAccounts, 'get'>) {
    this.#serviceAccounts = serviceAccounts;
  }

  static async watch(deps: { store: Store; sessionStore?: Store; revocations: RevocationList; serviceAccounts: Pick<ServiceAccounts, 'get'> }): Promise<OpenStreams> {
    const streams = new OpenStreams(deps.serviceAccounts);
    deps.revocations.onRevoked((entry) => {
      if (entry.type === 'jti') streams.closeWhere((p) => p.auth_method !== 'api-key' && p.credential_id === entry.id);
      // A sign-in session or a refresh family: every token it produced, the session cookie too.
      if (entry.type === 'sid') streams.closeWhere((p) => p.sid === entry.id || p.fid === entry.id);
    });
    await (deps.sessionStore ?? deps.store).subscribe(SESSION_ENDED_CHANNEL, (sid) => streams.closeWhere((p) => p.sid === sid));
    await deps.store.subscribe(API_KEY_REVOKED_CHANNEL, (id) => streams.closeWhere((p) => p.auth_method === 'api-key' && p.credential_id === id));
    await deps.store.subscribe(SERVICE_ACCOUNT_CHANNEL, (clientId) => { void streams.#accountChanged(clientId); });
    return streams;
  }

  /** Watches `res` for as long as it is open. */
  add(principal: Principal, res: ServerResponse): void {
    const entry = { principal, res };
    this.#open.add(entry);
    res.once('close', () => this.#open.delete(entry));
  }

  get size(): number {
    return this.#open.size;
  }

  /**
   * Every open stream, cut off as {@link closeWhere} does: this hub lost contact with its
   * revocation channel (src/revocation/contact.ts), so none of them is known to be still allowed.
   */
  closeAll(): number {
    return this.closeWhere(() => true);
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

  /** A disabled or deleted account: its own tokens and those it obtained for users stop. */
  async #accountChanged(clientId: string): Promise<void> {
    const account = await this.#serviceAccounts.get(clientId).catch(() => null);
    if (account && !account.disabled) return;
    this.closeWhere((p) => p.client_id === clientId && (isServiceAccount(p) || p.act !== undefined));
  }
}
