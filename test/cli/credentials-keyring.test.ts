/**
 * Issue 15, finding G: the CLI's credentials key lay beside the encrypted credentials file, so
 * anyone who could read the one could read the other. Where the OS keyring is reachable, the key
 * lives there (Linux: libsecret's `secret-tool`, which reads the secret from stdin), and a copied
 * credentials file is useless without it; without a keyring the key file is used as before.
 *
 * The real keyring needs a desktop session that cannot run here: a stand-in `secret-tool` first on
 * PATH keeps its secrets in a JSON file and records every argv it is given.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { authorize } from '../helpers/authorize-flow.ts';
import { signIn, startRig, type Rig } from '../oidc/setup.ts';

const BIN = fileURLToPath(new URL('../../bin/mimir-auth.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'mimir-keyring-'));

/** A directory holding only a stand-in `secret-tool`; `working` false: one that always fails (no keyring session). */
function standIn(name: string, working: boolean): { bin: string; store: string; argvLog: string } {
  const bin = join(root, name);
  mkdirSync(bin);
  const store = join(bin, 'store.json');
  const argvLog = join(bin, 'argv.log');
  const script = `#!${process.execPath}
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(argvLog)}, JSON.stringify(args) + '\\n');
if (!${working}) { process.stderr.write('Cannot autolaunch D-Bus without X11 $DISPLAY\\n'); process.exit(1); }
const secrets = fs.existsSync(${JSON.stringify(store)}) ? JSON.parse(fs.readFileSync(${JSON.stringify(store)}, 'utf8')) : {};
const [command, ...rest] = args;
const attributes = [];
for (let i = 0; i < rest.length; i++) { if (rest[i] === '--label') i++; else attributes.push(rest[i]); }
const id = JSON.stringify(attributes);
if (command === 'store') { secrets[id] = fs.readFileSync(0, 'utf8'); }
else if (command === 'lookup') { if (!(id in secrets)) process.exit(1); process.stdout.write(secrets[id]); }
else if (command === 'clear') { delete secrets[id]; }
else process.exit(2);
fs.writeFileSync(${JSON.stringify(store)}, JSON.stringify(secrets));
`;
  writeFileSync(join(bin, 'secret-tool'), script);
  chmodSync(join(bin, 'secret-tool'), 0o755);
  return { bin, store, argvLog };
}

function cli(args: string[], home: string, path: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: home, env: { PATH: path, HOME: home } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const argvLines = (log: string): string[][] => existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]) : [];

describe('the CLI keeps its credentials key in the OS keyring when there is one (issue 15, finding G)', () => {
  let rig: Rig;
  const keyring = standIn('keyring', true);
  const broken = standIn('broken', false);
  const none = join(root, 'none');
  mkdirSync(none);

  before(async () => {
    rig = await startRig({ corp: 'okta' }, { storage: 'memory' });
  });
  after(async () => { await rig?.close(); });

  /** `mimir-auth login` with the browser's part played over HTTP: a fresh hub sign-in, consent, the redirect back. */
  async function login(home: string, path: string): Promise<string> {
    const session = (await signIn(rig, 'corp', { login: 'grace' })).session!;
    const child = spawn(process.execPath, [BIN, 'login', '--url', rig.hub.url, '--no-browser', '--timeout', '60'], { cwd: home, env: { PATH: path, HOME: home } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const url = await new Promise<URL>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${stderr}`)), 20_000);
      child.stderr.on('data', () => {
        const m = /(http:\/\/127\.0\.0\.1:\d+\/auth\/authorize\?\S+)/.exec(stderr);
        if (m) { clearTimeout(timer); resolve(new URL(m[1]!)); }
      });
    });
    const done = await authorize(rig.hub, session, Object.fromEntries(url.searchParams));
    assert.match(done.location ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback\?code=/);
    await (await fetch(done.location!)).text();
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /Credentials saved \(encrypted\)/);
    return stderr;
  }

  it('with a keyring: the key is stored there through stdin, read back from it, never written to disk nor passed in argv', async () => {
    const home = mkdtempSync(join(root, 'home-'));
    const file = join(home, '.mimir', 'credentials');
    await login(home, keyring.bin);
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(existsSync(join(home, '.mimir', 'credentials.key')), false, 'no key file beside the credentials');

    const secrets = JSON.parse(readFileSync(keyring.store, 'utf8')) as Record<string, string>;
    assert.deepEqual(Object.keys(secrets), [JSON.stringify(['service', 'mimir-auth', 'account', file])]);
    const key = Object.values(secrets)[0]!;
    assert.equal(Buffer.from(key, 'base64url').length, 32, 'a random 256-bit key');

    const who = await cli(['whoami'], home, keyring.bin);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /^user\s+grace$/m);
    const token = (await cli(['token'], home, keyring.bin)).stdout.trim();
    assert.ok(token.length > 20);

    const calls = argvLines(keyring.argvLog);
    assert.ok(calls.some((a) => a[0] === 'store'), 'stored in the keyring');
    assert.ok(calls.filter((a) => a[0] === 'lookup').length >= 2, 'read from the keyring');
    for (const argv of calls) {
      for (const arg of argv) {
        assert.ok(!arg.includes(key), 'the key never appears in argv');
        assert.ok(!arg.includes(token) && !arg.includes('eyJ'), 'no token in argv');
      }
    }

    // The file alone (a copy, or a home directory read without the keyring) cannot be opened.
    const alone = await cli(['whoami'], home, none);
    assert.equal(alone.code, 1);
    assert.match(alone.stderr, /neither in the OS keyring nor in/);

    const out = await cli(['logout'], home, keyring.bin);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(readFileSync(keyring.store, 'utf8')), {}, 'logout clears the keyring entry');
  });

  for (const [what, path] of [['without a keyring tool', none], ['with a keyring that fails (no session)', broken.bin]] as const) {
    it(`${what}: the key file is used as before`, async () => {
      const home = mkdtempSync(join(root, 'home-'));
      await login(home, path);
      const keyFile = join(home, '.mimir', 'credentials.key');
      assert.equal(statSync(keyFile).mode & 0o777, 0o600);
      assert.equal(statSync(join(home, '.mimir')).mode & 0o777, 0o700);
      const who = await cli(['whoami'], home, path);
      assert.equal(who.code, 0, who.stderr);
      assert.match(who.stdout, /^user\s+grace$/m);
    });
  }
});
