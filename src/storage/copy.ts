/**
 * `mimir-auth storage copy`: every live record of one store written into another, exactly
 * (payload, consumption, expiry), then read back and compared. Idempotent: a second run writes the
 * same records again. Records whose sealed fields must open under the target hubs' secrets go
 * through `transform` (signing keys, sessions), chosen by the caller.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Store, StoredEntry } from './adapter.ts';

export interface KindCount {
  copied: number;
  verified: number;
}

export interface CopyOptions {
  /** Rewrites a record on its way (re-sealing); throw to stop the copy. */
  transform?: (entry: StoredEntry) => StoredEntry;
  /** Told the running total every `every` records (default 500). */
  onProgress?: (copied: number) => void;
  every?: number;
}

export interface CopyReport {
  kinds: Record<string, KindCount>;
  /** Records that expired between being copied and being read back (not errors). */
  expiredMeanwhile: number;
  /** Records that read back differently: `kind/id`, ids shortened. Empty when all is well. */
  mismatches: string[];
}

export async function copyStore(source: Store, target: Store, options: CopyOptions = {}): Promise<CopyReport> {
  const kinds: Record<string, KindCount> = {};
  const written: StoredEntry[] = [];
  const every = options.every ?? 500;
  for await (const read of source.entries()) {
    const entry = options.transform ? options.transform(read) : read;
    await target.restore(entry);
    (kinds[entry.kind] ??= { copied: 0, verified: 0 }).copied++;
    written.push(entry);
    if (written.length % every === 0) options.onProgress?.(written.length);
  }
  const report: CopyReport = { kinds, expiredMeanwhile: 0, mismatches: [] };
  for (const entry of written) {
    const back = await target.find(entry.kind, entry.id);
    if (!back) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= Math.floor(Date.now() / 1000) + 1) report.expiredMeanwhile++;
      else report.mismatches.push(`${entry.kind}/${entry.id.slice(0, 12)}: missing`);
      continue;
    }
    if (!isDeepStrictEqual(back.payload, entry.payload) || back.consumedAt !== entry.consumedAt || back.expiresAt !== entry.expiresAt) {
      report.mismatches.push(`${entry.kind}/${entry.id.slice(0, 12)}: differs`);
      continue;
    }
    kinds[entry.kind]!.verified++;
  }
  return report;
}
