/**
 * How fresh this hub's view of revocations is (issue 18, item 3). Revocations, key rotations and
 * the invalidations of the hot-path caches reach a hub through its store's pub/sub; a message lost
 * while a connection was down or silently partitioned is a revocation this hub does not know of.
 * So the hub measures its contact with that channel end to end: every second it publishes a
 * numbered heartbeat on a channel of its own and counts contact as confirmed, as of the moment a
 * heartbeat was sent, only when it receives that heartbeat back. Messages on one channel arrive
 * in the order the store took them, so every revocation published before that heartbeat has
 * reached this hub by then (or, after a gap, has been read back from the store by a resync).
 *
 * For `maxStalenessMs` after the last confirmation the hub may answer from what it knows; beyond
 * that, or while a resync after a gap is under way, every decision that depends on revocations is
 * refused with 503 ({@link RevocationContact.assertFresh}). A heartbeat published but still
 * missing from the sequence a while after a later one arrived (a lost message; at once when the hub
 * is not answering from trust anyway), the store saying its subscription connection is back after
 * a loss ({@link Store.onMessagesLost}), or contact regained after being stale triggers a resync —
 * the revocation list read from the store, every cache fed by pub/sub dropped, the signing keys
 * reloaded — and only then is the hub fresh again, so a credential revoked during an outage is
 * refused from the first answer the hub gives after it.
 *
 * Stores whose messages stay in the process (memory; SQLite, whose change feed is local to the
 * host) always have contact: there is no channel that could silently fail.
 */
import { randomBytes } from 'node:crypto';
import { OAuthError } from '../errors.ts';
import type { Store } from '../storage/adapter.ts';

/** Each hub hears only its own heartbeats: one channel per hub, so N hubs cost N messages a beat, not N². */
const HEARTBEAT_CHANNEL = 'revocation-heartbeat';
/** At most this long between heartbeats (the "≤ 1 s"). */
const MAX_HEARTBEAT_MS = 1000;
/**
 * Heartbeats sent one after another can arrive out of order (PostgreSQL publishes through a pool:
 * after a partition heals, the statements each connection held run at once), so one arriving
 * before an earlier one is a hole, not yet a loss: contact is confirmed only up to the hole, and
 * the hole is a loss once it stays open this many intervals (and {@link MIN_HOLE_MS}) or holds
 * more than {@link MAX_AHEAD} heartbeats behind it, unless the missing heartbeat's publish failed.
 */
const HOLE_INTERVALS = 2;
/** ...and at least this long: a heartbeat's publish may take a store's command timeout (1 s) to fail. */
const MIN_HOLE_MS = 2500;
const MAX_AHEAD = 16;
/** Stores whose pub/sub never leaves the process or host: no channel to lose. */
const LOCAL: ReadonlySet<Store['kind']> = new Set(['memory', 'sqlite']);

export interface ContactOptions {
  /** MIMIR_REVOCATION_MAX_STALENESS, in milliseconds. */
  maxStalenessMs: number;
  now?: () => number;
  /**
   * Brings every view fed by pub/sub back in line with the store (revocation list, caches, keys).
   * Rejects when the store cannot be read; it is tried again on the next heartbeat.
   */
  resync: () => Promise<void>;
  /** Contact lost beyond the allowed staleness, or a gap seen: what was granted on trust ends (open streams). */
  onLost?: () => void;
  onError?: (err: unknown) => void;
}

/** What the authentication path asks: may I answer from what I know of revocations? */
export interface FreshnessCheck {
  /** Throws a 503 `temporarily_unavailable` OAuthError when the answer could rest on a missed revocation. */
  assertFresh(): void;
}

export class RevocationContact implements FreshnessCheck {
  readonly #store: Store;
  readonly #o: Required<Omit<ContactOptions, 'onLost'>> & Pick<ContactOptions, 'onLost'>;
  readonly #remote: boolean;
  readonly #channel = `${HEARTBEAT_CHANNEL}.${randomBytes(9).toString('base64url')}`;
  readonly #intervalMs: number;
  /** Epoch ms as of which every revocation published anywhere is known here. */
  #confirmedAt: number;
  /** Sequence number of the last heartbeat sent, and of the last one received with none missing before it. */
  #sent = 0;
  #received = 0;
  /** Heartbeats received after a hole (sequence number → when sent), and since when the hole is open. */
  readonly #ahead = new Map<number, number>();
  #holeSince: number | undefined;
  /** Heartbeats whose publish failed, not received yet: their absence is no hole (only for a store that reports its losses). */
  readonly #excused = new Set<number>();
  readonly #reportsLosses: boolean;
  /** The last heartbeat sent when the store last reported a loss; and the one `#heardSentAt` is of. */
  #lossSeq = 0;
  #heardSeq = 0;
  readonly #holeGraceMs: number;
  /** When the last heartbeat heard was sent (epoch ms). */
  #heardSentAt = 0;
  /** A gap was seen (or contact went stale): nothing is trusted until a resync completes. */
  #needsResync = false;
  /** Gaps seen so far: a resync that saw another begin while it read must read again. */
  #gaps = 0;
  #resyncing = false;
  /** onLost has been told about the current outage. */
  #lostReported = false;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(store: Store, options: ContactOptions) {
    this.#store = store;
    this.#o = { now: Date.now, onError: () => {}, ...options };
    this.#remote = !LOCAL.has(store.kind);
    this.#intervalMs = Math.min(MAX_HEARTBEAT_MS, Math.floor(options.maxStalenessMs / 4));
    this.#holeGraceMs = Math.max(HOLE_INTERVALS * this.#intervalMs, MIN_HOLE_MS);
    // The revocation list was just loaded from the store: what it holds is current as of now.
    this.#confirmedAt = this.#o.now();
    // Reconnected after a loss: what was published meanwhile is gone. Heard from now on (not only
    // once beating starts), and resynced from a heartbeat sent after it: a Redis subscriber says it
    // is ready before it has subscribed again.
    this.#reportsLosses = this.#remote && typeof store.onMessagesLost === 'function';
    if (this.#remote) store.onMessagesLost?.(() => {
      this.#lossSeq = this.#sent;
      this.#gap();
    });
  }

  /** Subscribes to this hub's heartbeat channel and starts beating (no-op for in-process stores). */
  async start(): Promise<void> {
    if (!this.#remote || this.#timer) return;
    await this.#store.subscribe(this.#channel, (message) => this.#heard(message));
    this.#timer = setInterval(() => this.#beat(), this.#intervalMs);
    this.#timer.unref();
    this.#beat();
  }

  /** Whether cached revocation decisions may be used now. */
  get fresh(): boolean {
    return !this.#remote || (!this.#needsResync && this.#o.now() - this.#confirmedAt <= this.#o.maxStalenessMs);
  }

  /** Seconds since contact was last confirmed (0 for in-process stores). */
  get stalenessSeconds(): number {
    return this.#remote ? Math.max(0, this.#o.now() - this.#confirmedAt) / 1000 : 0;
  }

  assertFresh(): void {
    // A local store has no channel to lose, but another process on its file may have just revoked
    // something (the CLI beside a server on SQLite): heard now, before this answer is given.
    if (!this.#remote) return this.#store.catchUp?.();
    if (this.fresh) return;
    // RFC 6749 §5.2 / §4.1.2.1: temporarily_unavailable; the edge adds Retry-After to every 503.
    throw new OAuthError('temporarily_unavailable', 'The hub cannot confirm revocations right now; retry shortly.', {
      detail: `revocation channel unconfirmed for ${this.stalenessSeconds.toFixed(1)} s${this.#needsResync ? ' (resync pending)' : ''}`,
    });
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #beat(): void {
    this.#checkHole();
    if (!this.fresh) this.#lost();
    const seq = ++this.#sent;
    // Out the way every revocation goes (the store's publish), so hearing it proves that path.
    this.#store.publish(this.#channel, `${seq}:${this.#o.now()}`).catch(() => {
      // Never sent, or sent and lost on the way: either way it tells nothing of the subscription
      // when the store reports that subscription's losses, so its absence is no hole then.
      if (!this.#reportsLosses || seq <= this.#received) return;
      this.#excused.add(seq);
      this.#settle();
    });
  }

  #heard(message: string): void {
    const [seqText, sentText] = message.split(':');
    const seq = Number(seqText);
    const sentAt = Number(sentText);
    if (!Number.isSafeInteger(seq) || !Number.isFinite(sentAt) || seq <= this.#received || seq > this.#sent) return;
    this.#ahead.set(seq, sentAt);
    this.#settle();
  }

  /**
   * Takes in the heartbeats that follow the last one received without a hole (and passes over
   * those whose publish failed), then: confirms contact as of the last one taken in, resyncs if a
   * resync is due, or waits on the hole that remains.
   */
  #settle(): void {
    let last: number | undefined;
    for (;;) {
      const next = this.#received + 1;
      const sentAt = this.#ahead.get(next);
      if (sentAt !== undefined) {
        last = sentAt;
        this.#heardSeq = next;
      } else if (!this.#excused.has(next)) break;
      this.#ahead.delete(next);
      this.#excused.delete(next);
      this.#received = next;
    }
    this.#holeSince = this.#ahead.size ? (this.#holeSince ?? this.#o.now()) : undefined;
    if (last !== undefined) {
      this.#heardSentAt = last;
      if (!this.#needsResync && this.#o.now() - this.#confirmedAt > this.#o.maxStalenessMs) this.#gap();
      if (this.#needsResync) this.#resync();
      else this.#confirmedAt = Math.max(this.#confirmedAt, last);
    }
    this.#checkHole();
  }

  /**
   * A hole open too long (or too many heartbeats behind it) is a loss: resync from the last
   * heartbeat heard. While nothing is answered from trust anyway (stale, or a resync pending), a
   * hole is a loss at once: waiting would only keep the hub answering 503 longer.
   */
  #checkHole(): void {
    if (this.#holeSince === undefined) return;
    if (this.fresh && this.#o.now() - this.#holeSince < this.#holeGraceMs && this.#ahead.size <= MAX_AHEAD) return;
    const last = Math.max(...this.#ahead.keys());
    this.#heardSentAt = this.#ahead.get(last)!;
    this.#heardSeq = last;
    this.#received = last;
    this.#ahead.clear();
    for (const seq of this.#excused) if (seq <= last) this.#excused.delete(seq);
    this.#holeSince = undefined;
    this.#gap();
    this.#resync();
  }

  /** Messages may have been lost: nothing is trusted until a resync after the next heartbeat heard. */
  #gap(): void {
    this.#needsResync = true;
    this.#gaps++;
    this.#lost();
  }

  /**
   * Messages may have been lost before the first heartbeat heard after a gap; everything published
   * after it arrives in order. Reading the store once it has been heard covers the first, so when
   * the read is done contact is confirmed as of the last heartbeat heard — unless another gap came
   * meanwhile, which needs another read.
   */
  #resync(): void {
    // After a loss the store reported, only a heartbeat sent since proves the subscription is back.
    if (this.#resyncing || this.#heardSeq <= this.#lossSeq) return;
    this.#resyncing = true;
    const gaps = this.#gaps;
    this.#o.resync().then(
      () => {
        this.#resyncing = false;
        if (gaps !== this.#gaps) return this.#resync();
        this.#needsResync = false;
        this.#lostReported = false;
        this.#confirmedAt = Math.max(this.#confirmedAt, this.#heardSentAt);
      },
      (e: unknown) => {
        // Tried again on the next heartbeat; meanwhile nothing is answered from trust.
        this.#resyncing = false;
        this.#o.onError(e);
      },
    );
  }

  #lost(): void {
    if (this.#lostReported) return;
    this.#lostReported = true;
    try { this.#o.onLost?.(); } catch (e) { this.#o.onError(e); }
  }
}
