import { userInfo } from 'node:os';
import { sep } from 'node:path';
import { ConfigError } from '../config/index.ts';

/** A command line or input the CLI refuses: one line on stderr, exit 64 (EX_USAGE). */
export class UsageError extends Error {}

const DATA_DIR_REFUSALS: Record<string, string> = {
  EEXIST: 'is a file, not a directory',
  ENOTDIR: 'is not a directory (it, or a directory above it, is a file)',
  EACCES: 'cannot be created or written by this user',
  EPERM: 'cannot be created or written by this user',
  EROFS: 'is on a read-only file system',
};

/**
 * What the operating system refused in the data directory (creating it, its lock, its files),
 * said as a configuration error naming MIMIR_DATA_DIR and what would work; any other error as it is.
 */
export function dataDirError(e: unknown, dataDir: string): unknown {
  const err = e as NodeJS.ErrnoException | undefined;
  const why = typeof err?.code === 'string' ? DATA_DIR_REFUSALS[err.code] : undefined;
  if (!why || typeof err!.path !== 'string' || (err!.path !== dataDir && !err!.path.startsWith(dataDir + sep))) return e;
  return new ConfigError([`MIMIR_DATA_DIR: ${dataDir} ${why} (${err!.code} on ${err!.path}); point MIMIR_DATA_DIR at a directory user ${userInfo().username} may create and write, or fix its owner and mode`]);
}
