/**
 * The CLI's credentials: `~/.mimir/credentials`, sealed with AES-256-GCM under a random key kept
 * in the OS keyring where there is one (Linux: libsecret's `secret-tool`; macOS: `security`), and
 * otherwise in `~/.mimir/credentials.key`; directory 0700, files 0600. A corrupt or tampered file
 * is reported as such and the user is asked to sign in again — never half-read.
 *
 * What the encryption buys: with the keyring, a copy of the credentials file (a backup, a synced
 * home directory, another account that can read it) is useless without the user's unlocked
 * keyring. With the key file, it protects only against reading that one file: whoever can read
 * the user's home directory reads the key beside it and can decrypt it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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

/** The OS keyring, through its command-line tool; every method answers null/false when it cannot. */
interface Keyring {
  /** The key stored for `account`, or null (none stored, no tool, no keyring session, a failure). */
  read(account: string): Buffer | null;
  /** Stores `key` for `account`; false when the keyring could not take it. */
  write(account: string, key: Buffer): boolean;
  remove(account: string): void;
}

const SERVICE = 'mimir-auth';
const LABEL = 'mimir-auth CLI credentials key';
/** Long enough for the keyring to ask the user to unlock it. */
const KEYRING_TIMEOUT_MS = 30_000;

/** Runs a keyring tool; null when it is absent, failed or timed out. `input` goes to its stdin. */
function run(command: string, args: string[], input?: string): string | null {
  const r = spawnSync(command, args, { input: input ?? '', encoding: 'utf8', timeout: KEYRING_TIMEOUT_MS, stdio: ['pipe', 'pipe', 'ignore'] });
  return r.error || r.status !== 0 ? null : r.stdout;
}

const asKey = (out: string | null): Buffer | null => {
  const key = out === null ? null : Buffer.from(out.trim(), 'base64url');
  return key && key.length === 32 ? key : null;
};

/** libsecret (GNOME Keyring, KWallet through its Secret Service): the secret goes on stdin. */
const secretTool: Keyring = {
  read: (account) => asKey(run('secret-tool', ['lookup', 'service', SERVICE, 'account', account])),
  write: (account, key) => run('secret-tool', ['store', '--label', LABEL, 'service', SERVICE, 'account', account], key.toString('base64url')) !== null,
  remove: (account) => void run('secret-tool', ['clear', 'service', SERVICE, 'account', account]),
};

/**
 * macOS Keychain. `security add-generic-password` takes the secret only as the `-w` argument
 * (without a value it prompts on the terminal, which scripts have not): the random key, never the
 * credentials, is visible in the process list for the moment the command runs, to the user's own
 * processes and root — who could read the key file in its place anyway.
 */
const keychain: Keyring = {
  read: (account) => asKey(run('security', ['find-generic-password', '-s', SERVICE, '-a', account, '-w'])),
  write: (account, key) => run('security', ['add-generic-password', '-U', '-s', SERVICE, '-a', account, '-l', LABEL, '-w', key.toString('base64url')]) !== null,
  remove: (account) => void run('security', ['delete-generic-password', '-s', SERVICE, '-a', account]),
};

function osKeyring(): Keyring | null {
  if (process.platform === 'darwin') return keychain;
  if (process.platform === 'win32') return null;
  return secretTool;
}

/**
 * The key for the credentials file `file`: the keyring's (reused, or a new one stored there), else
 * the key file's. A key file left from before the keyring took over is deleted: the file is
 * sealed anew under the keyring's key.
 */
function keyForSaving(file: string, keyFile: string): Buffer {
  const keyring = osKeyring();
  if (keyring) {
    let key = keyring.read(file);
    if (!key) {
      const fresh = randomBytes(32);
      if (keyring.write(file, fresh)) key = keyring.read(file);
    }
    if (key) {
      rmSync(keyFile, { force: true });
      return key;
    }
  }
  return loadOrCreateKeyFile(keyFile);
}

export function saveCredentials(c: StoredCredentials): string {
  const { file, key } = paths();
  mkdirSync(credentialsDir(), { recursive: true, mode: 0o700 });
  chmodSync(credentialsDir(), 0o700);
  const k = keyForSaving(file, key);
  writeFileSync(file, seal(k, JSON.stringify(c), AAD) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** null when nobody is signed in; throws CredentialsError when the file cannot be trusted. */
export function loadCredentials(): StoredCredentials | null {
  const { file, key } = paths();
  if (!existsSync(file)) return null;
  const again = `run \`mimir-auth login\` to sign in again`;
  const keys: Buffer[] = [];
  const fromKeyring = osKeyring()?.read(file);
  if (fromKeyring) keys.push(fromKeyring);
  if (existsSync(key)) {
    try {
      keys.push(loadOrCreateKeyFile(key));
    } catch {
      if (!keys.length) throw new CredentialsError(`${key} is not a valid key file; ${again}`);
    }
  }
  if (!keys.length) throw new CredentialsError(`${file} cannot be decrypted: its key is neither in the OS keyring nor in ${key}; ${again}`);
  const box = readFileSync(file, 'utf8').trim();
  const opened = keys.map((k) => unseal(k, box, AAD)).find((plain) => plain !== null);
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
  osKeyring()?.remove(file);
  return had;
}
