/**
 * Issue 21, item 6: `--help` on every command and subcommand prints its usage and exits 0, starting
 * nothing. The commands are enumerated from the commander program itself, so a command added
 * later is covered without touching this test.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../admin/support.ts';
import { freePort } from '../helpers/hub.ts';
import { buildProgram, commandPaths } from '../../src/cli/program.ts';
import pkg from '../../package.json' with { type: 'json' };

const PATHS = commandPaths(buildProgram(() => undefined, pkg.version));

/** Whether something listens on 127.0.0.1:port (a hub that started would). */
async function portTaken(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

/** Runs `jobs` two at a time (the machine is shared). */
async function inPairs<T>(items: readonly T[], job: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += 2) await Promise.all(items.slice(i, i + 2).map(job));
}

describe('mimir-auth --help', () => {
  it('the program has every command of the README (the enumeration is not empty or partial)', () => {
    const names = PATHS.map((p) => p.join(' '));
    for (const expected of ['serve', 'config', 'keys create', 'keys list', 'keys revoke', 'service-accounts create', 'service-accounts rotate-secret',
      'signing-keys rotate', 'clients revoke', 'revoke', 'providers check', 'routes', 'doctor', 'storage copy', 'token', 'login', 'whoami', 'logout', 'version']) {
      assert.ok(names.includes(expected), `${expected} is missing from ${names.join(', ')}`);
    }
  });

  it('on every command and subcommand: usage on stdout, exit 0, no port bound, no data directory made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-help-'));
    const port = await freePort();
    const env = { MIMIR_AUTH_PORT: String(port), MIMIR_DATA_DIR: join(dir, 'data'), MIMIR_AUTH_PROT: 'a typo that a started command would warn about' };
    await inPairs(PATHS, async (path) => {
      // The command runs to its end by itself: `serve --help` that started the server would not exit.
      const r = await cli([...path, '--help'], env, dir);
      assert.equal(r.code, 0, `${path.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: mimir-auth ${path.join(' ')}\\b`, 'm'), `${path.join(' ')} --help`);
      assert.equal(r.stderr, '', `${path.join(' ')} --help writes nothing on stderr`);
    });
    assert.equal(await portTaken(port), false);
    assert.equal(existsSync(join(dir, 'data')), false, 'no data directory');
    assert.deepEqual(readdirSync(dir), [], 'nothing written in the working directory');
  });

  it('`help COMMAND`, `-h` and no command at all print the usage too, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-help-'));
    const env = { MIMIR_DATA_DIR: join(dir, 'data') };
    const cases: Array<[string[], RegExp]> = [
      [[], /^Usage: mimir-auth \[options\] \[command\]/m],
      [['--help'], /^Usage: mimir-auth \[options\] \[command\][\s\S]*Exit codes: 0 done, 1 failed, 64 bad command line/m],
      [['help'], /^Usage: mimir-auth \[options\] \[command\]/m],
      [['help', 'serve'], /^Usage: mimir-auth serve/m],
      [['keys', 'help', 'create'], /^Usage: mimir-auth keys create/m],
      [['storage', 'copy', '-h'], /^Usage: mimir-auth storage copy[\s\S]*--to <url>/m],
    ];
    await inPairs(cases, async ([args, usage]) => {
      const r = await cli(args, env, dir);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, usage, args.join(' '));
    });
    assert.equal(existsSync(join(dir, 'data')), false);
  });

  it('-v, --version and version print the version, exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-help-'));
    await inPairs([['-v'], ['--version'], ['version']], async (args) => {
      const r = await cli(args, {}, dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${pkg.version}\n`);
    });
  });

  it('a wrong command line exits 64 and says what would be accepted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mimir-cli-help-'));
    const cases: Array<[string[], RegExp]> = [
      [['keys', 'crate'], /^mimir-auth: unknown command 'crate'\n\(Did you mean create\?\)/],
      [['doctor', '--jsn'], /^mimir-auth: unknown option '--jsn'\n\(Did you mean --json\?\)/],
      [['revoke', 'sesion', 'sid-1'], /^mimir-auth: command-argument value 'sesion' is invalid for argument 'type'\. Allowed choices are session, access_token, signing_key\./],
      [['keys', 'create'], /^mimir-auth: required option '--name <name>' not specified/],
      [['keys', 'revoke'], /^mimir-auth: missing required argument 'id'/],
      [['nonsense'], /^mimir-auth: unknown command 'nonsense'/],
    ];
    await inPairs(cases, async ([args, message]) => {
      const r = await cli(args, { MIMIR_DATA_DIR: join(dir, 'data') }, dir);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    });
    assert.equal(existsSync(join(dir, 'data')), false, 'a refused command line opens nothing');
  });
});
