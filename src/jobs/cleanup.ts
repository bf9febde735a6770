/**
 * The periodic cleanup: removes expired records from the SQLite and memory stores (Redis expires
 * keys natively, so there it finds nothing to do). It relies on Store.purgeExpired, which deletes
 * only rows whose expiry has passed, so a live record is never touched.
 */
import type { Logger } from 'pino';
import type { Store } from '../storage/adapter.ts';

export interface CleanupReport {
  /** Records removed, by kind. */
  removed: Record<string, number>;
  total: number;
}

/** One pass: purge and report. */
export async function runCleanup(store: Store): Promise<CleanupReport> {
  const removed = await store.purgeExpired();
  return { removed, total: Object.values(removed).reduce((a, b) => a + b, 0) };
}

/** Runs {@link runCleanup} every `intervalSeconds` (0 = never); returns the stop function. */
export function startCleanup(store: Store, options: { intervalSeconds: number; log: Logger; onReport?: (report: CleanupReport) => void }): () => void {
  if (options.intervalSeconds <= 0 || store.kind === 'redis') return () => {};
  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a slow pass is never overlapped by the next
    running = true;
    runCleanup(store)
      .then((report) => {
        if (report.total > 0) options.log.info({ removed: report.removed, total: report.total }, 'cleanup removed expired records');
        else options.log.debug('cleanup found no expired records');
        options.onReport?.(report);
      })
      .catch((err: unknown) => options.log.error({ err }, 'cleanup failed'))
      .finally(() => { running = false; });
  }, options.intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
