/**
 * The commands of a person using the CLI against a running hub (no local configuration needed):
 * login, whoami, token, logout. Their refusals (LoginError, CredentialsError) exit 1.
 */
import { loadConfig } from '../config/index.ts';
import { UsageError } from './usage-error.ts';
import { CredentialsError } from './credentials.ts';
import { freshCredentials, login, LoginError, logout, whoami } from './login.ts';

async function refusalsExit1(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof LoginError || e instanceof CredentialsError) {
      console.error(`mimir-auth: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

export function loginCommand(o: { url?: string; browser: boolean; timeout: string; scope?: string }): Promise<number> {
  return refusalsExit1(async () => {
    const timeout = Number(o.timeout);
    if (!Number.isInteger(timeout) || timeout < 10) throw new UsageError('--timeout: a whole number of seconds, at least 10');
    const url = o.url ?? loadConfig().publicUrl;
    await login({ url, openBrowser: o.browser, timeoutSeconds: timeout, out: process.stderr, ...(o.scope ? { scope: o.scope } : {}) });
    return 0;
  });
}

export function whoamiCommand(): Promise<number> {
  return refusalsExit1(() => whoami(process.stdout));
}

/** Only the token on stdout, so `$(mimir-auth token)` works. */
export function userToken(): Promise<number> {
  return refusalsExit1(async () => {
    process.stdout.write(`${(await freshCredentials()).accessToken}\n`);
    return 0;
  });
}

export function logoutCommand(): Promise<number> {
  return refusalsExit1(() => logout(process.stderr));
}
