/**
 * The key sessions are sealed with: derived from MIMIR_SESSION_SECRET (every instance that shares
 * the secret shares the key), else a 0600 key file in MIMIR_DATA_DIR created on first use.
 */
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { deriveKey, loadOrCreateKeyFile } from '../crypto/index.ts';

export function sessionKey(config: Pick<Config, 'session' | 'dataDir'>): Buffer {
  return config.session.secret ? deriveKey(config.session.secret, 'sessions') : loadOrCreateKeyFile(join(config.dataDir, 'session.key'));
}
