/**
 * What this hub did minute by minute over the last hour: requests authenticated, denials
 * (authentication failures and refused permissions) and access tokens issued, for the admin
 * console's summary chart. Kept in memory, per instance, beside the Prometheus counters (which
 * only ever grow and say nothing of "the last hour" on their own). One map lookup per event.
 */
export type ActivitySeries = 'requests' | 'denials' | 'tokens';

export interface ActivityMinute {
  /** Epoch milliseconds of the minute's start. */
  start: number;
  requests: number;
  denials: number;
  tokens: number;
}

const MINUTE = 60_000;
export const ACTIVITY_MINUTES = 60;

export class RecentActivity {
  readonly #now: () => number;
  readonly #minutes = new Map<number, ActivityMinute>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  add(series: ActivitySeries, by = 1): void {
    const start = Math.floor(this.#now() / MINUTE) * MINUTE;
    let m = this.#minutes.get(start);
    if (!m) {
      m = { start, requests: 0, denials: 0, tokens: 0 };
      this.#minutes.set(start, m);
      // Forget what is older than the hour shown.
      for (const k of this.#minutes.keys()) if (k <= start - ACTIVITY_MINUTES * MINUTE) this.#minutes.delete(k);
    }
    m[series] += by;
  }

  /**
   * The last {@link ACTIVITY_MINUTES} minutes, oldest first, the current one last, a minute with
   * nothing in it as zeros.
   *
   * @example
   * hub.metrics.recent.lastHour().at(-1) // { start: 1796565840000, requests: 12, denials: 1, tokens: 3 }
   */
  lastHour(): ActivityMinute[] {
    const current = Math.floor(this.#now() / MINUTE) * MINUTE;
    const out: ActivityMinute[] = [];
    for (let i = ACTIVITY_MINUTES - 1; i >= 0; i--) {
      const start = current - i * MINUTE;
      const m = this.#minutes.get(start);
      out.push(m ? { ...m } : { start, requests: 0, denials: 0, tokens: 0 });
    }
    return out;
  }
}
