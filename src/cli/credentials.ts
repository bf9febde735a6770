/**
 * The CLI's credentials: `~/.mimir/credentials`, sealed with AES-256-GCM under a random key in
 * `~/.mimir/credentials.key`; directory 0700, files 0600. A corrupt or tampered file is reported
 * as such and the user is asked to sign in again — never half-read.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKeyFile, seal, unseal } from '../crypto/index.ts';

export interface StoredCredentials {
  url: string;
  issuer: string;
  clientId: string;
  accessToken: string;
  refreshToken?: string;
  /** Epoch seconds. */
  expiresAt: number;
  scope?: string;
  savedAt: number;
}

export class CredentialsError extends Error {}

const AAD = 'mimir-cli-credentials:v1';

export function credentialsDir(): string {
  return join(homedir(), '.mimir');
}

const paths = () => ({ file: join(credentialsDir(), 'credentials'), key: join(credentialsDir(), 'credentials.key') });

export function saveCredentials(c: StoredCredentials): string {
  const { file, key } = paths();
  mkdirSync(credentialsDir(), { recursive: true, mode: 0o700 });
  chmodSync(credentialsDir(), 0o700);
  const k = loadOrCreateKeyFile(key);
  writeFileSync(file, seal(k, JSON.stringify(c), AAD) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** null when nobody is signed in; throws CredentialsError when the file cannot be trusted. */
export function loadCredentials(): StoredCredentials | null {
  const { file, key } = paths();
  if (!existsSync(file)) return null;
  const again = `run \`mimir-auth login\` to sign in again`;
  if (!existsSync(key)) throw new CredentialsError(`${file} cannot be decrypted: its key file ${key} is missing; ${again}`);
  let k: Buffer;
  try {
    k = loadOrCreateKeyFile(key);
  } catch {
    throw new CredentialsError(`${key} is not a valid key file; ${again}`);
  }
  const opened = unseal(k, readFileSync(file, 'utf8').trim(), AAD);
  if (!opened) throw new CredentialsError(`${file} is corrupt or has been tampered with; ${again}`);
  try {
    const c = JSON.parse(opened.toString('utf8')) as StoredCredentials;
    if (typeof c.accessToken !== 'string' || typeof c.url !== 'string') throw new Error('shape');
    return c;
  } catch {
    throw new CredentialsError(`${file} does not hold credentials; ${again}`);
  }
}

export function deleteCredentials(): boolean {
  const { file, key } = paths();
  const had = existsSync(file);
  rmSync(file, { force: true });
  rmSync(key, { force: true });
  return had;
}
