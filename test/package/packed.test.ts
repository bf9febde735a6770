/**
 * The package as users get it: `npm pack` (prepack compiles src/ to dist/), then
 * `npm install ./mimir-auth-hub-*.tgz` into an empty app, then the bin, the two entry points, the
 * declarations and the README's Library example, all from outside the repository. Node strips
 * types only outside node_modules, so nothing here may reach a .ts file.
 *
 * One pack and one install serve every case (they take a while; progress lines say what is going on).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childEnv, installedVersion, installInto, manifest, packTarball, root, run, show, withPackLock } from '../helpers/packed.ts';

const started = Date.now();
const progress = (message: string) => console.log(`[packed] ${((Date.now() - started) / 1000).toFixed(1)} s: ${message}`);

/** The first ```js block under "## Library" in README.md, verbatim. */
function readmeLibraryExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.indexOf('\n## Library\n');
  assert.ok(section >= 0, 'README.md has a "## Library" section');
  const next = readme.indexOf('\n## ', section + 1);
  const body = readme.slice(section, next < 0 ? undefined : next);
  const block = /\n```js\n([\s\S]*?)\n```\n/.exec(body);
  assert.ok(block?.[1], 'the Library section holds a ```js block');
  return `${block[1]}\n`;
}

/**
 * An import hook that names every `cli/main` module Node resolves, to tell which CLI the bin ran.
 * module.registerHooks (Node 22.15+) runs in-thread, before the bin's own imports.
 */
const TRACE_CLI = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
registerHooks({ resolve(specifier, context, next) {
  const result = next(specifier, context);
  if (/\\/cli\\/main\\.[jt]s$/.test(result.url)) process.stderr.write('[cli-module] ' + result.url + '\\n');
  return result;
} });`)}`;

describe('the packed package, installed into an empty app', () => {
  let work: string;
  let app: string;
  let files: string[];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mimir-packed-'));
    app = join(work, 'app');

    progress('npm pack (prepack compiles src/ to dist/ with tsconfig.build.json)…');
    const tarball = await packTarball(work);
    const listing = await run('tar', ['-tzf', join(work, tarball)], work);
    assert.equal(listing.code, 0, show(listing));
    files = listing.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    progress(`packed ${tarball}: ${files.length} files`);

    // What the README's example says to install next to the hub, and what a TypeScript user has.
    const alongside = [`fastify@${installedVersion('fastify')}`, `express@${installedVersion('express')}`, `@types/node@${installedVersion('@types/node')}`];
    progress(`npm install ./${tarball} ${alongside.join(' ')} (into an empty app)…`);
    await installInto(app, join(work, tarball), alongside);
    progress('installed');
  }, { timeout: 15 * 60_000 });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the tarball holds what runs and nothing else: no tests, benchmarks, CI, scripts or TypeScript sources', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', '.env.example', 'bin/mimir-auth.js',
      'dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/cli/main.js']) {
      assert.ok(files.includes(file), `the tarball holds ${file}`);
    }
    const stray = files.filter((f) => /^(test|bench|\.ci|scripts|src)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')));
    assert.deepEqual(stray, []);
    assert.deepEqual(files.filter((f) => !/^(dist|bin)\//.test(f)).sort(), ['.env.example', 'CHANGELOG.md', 'LICENSE', 'README.md', 'package.json']);
  });

  it('npx mimir-auth --help prints the usage', async () => {
    const r = await run('npx', ['mimir-auth', '--help'], app);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^Usage:/m);
    assert.match(r.stdout, /mimir-auth keys create --name NAME/);
  });

  it('npx mimir-auth keys create bootstraps an admin key in MIMIR_DATA_DIR, with no server running', async () => {
    const data = mkdtempSync(join(work, 'data-'));
    const r = await run('npx', ['mimir-auth', 'keys', 'create', '--name', 'admin', '--roles', 'admin'], app,
      childEnv({ MIMIR_DATA_DIR: data, HOME: work }));
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^ {2}mimir_[A-Za-z0-9]+_[A-Za-z0-9_-]+$/m);
    assert.ok(readdirSync(data).length > 0, 'the key was stored under MIMIR_DATA_DIR');
  });

  it('mimir-auth --version prints the version of package.json, read from the compiled CLI', async () => {
    const r = await run(join(app, 'node_modules', '.bin', 'mimir-auth'), ['--version'], app);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim(), manifest.version);
  });

  it('the installed bin runs the compiled CLI; the repository\'s runs the sources even with a dist/ left behind by npm pack', async () => {
    const installed = await run(process.execPath, ['--import', TRACE_CLI, join(app, 'node_modules', '.bin', 'mimir-auth'), '--version'], app);
    assert.equal(installed.code, 0, show(installed));
    assert.match(installed.stderr, /\[cli-module\] file:\/\/\S*\/node_modules\/mimir-auth-hub\/dist\/cli\/main\.js$/m);

    // before() packed in the repository, so dist/ is there now (and stays whole while no other test packs).
    const repository = await withPackLock(async () => {
      assert.ok(readdirSync(join(root, 'dist')).length > 0, 'npm pack left dist/ in the repository');
      return run(process.execPath, ['--import', TRACE_CLI, join(root, 'bin', 'mimir-auth.js'), '--version'], app);
    });
    assert.equal(repository.code, 0, show(repository));
    assert.match(repository.stderr, /\[cli-module\] file:\/\/\S*\/src\/cli\/main\.ts$/m);
    assert.doesNotMatch(repository.stderr, /dist\/cli\/main\.js/);
  });

  it('plain JavaScript imports mimir-auth-hub and mimir-auth-hub/client from node_modules', async () => {
    writeFileSync(join(app, 'imports.mjs'), `
import { loadConfig, openHub, mimirAuth, mimirAuthExpress, OAuthError, Authorizer } from 'mimir-auth-hub';
import { createMimirClient } from 'mimir-auth-hub/client';
const client = createMimirClient({ url: 'http://127.0.0.1:1', mode: 'api-key', apiKey: 'mimir_a_b', fromEnv: false });
console.log(JSON.stringify({
  resolved: [import.meta.resolve('mimir-auth-hub'), import.meta.resolve('mimir-auth-hub/client')],
  functions: [loadConfig, openHub, mimirAuth, mimirAuthExpress, OAuthError, Authorizer].map((f) => typeof f),
  headers: await client.headers(),
}));
`);
    const r = await run(process.execPath, ['imports.mjs'], app);
    assert.equal(r.code, 0, show(r));
    const out = JSON.parse(r.stdout) as { resolved: string[]; functions: string[]; headers: Record<string, string> };
    assert.match(out.resolved[0]!, /\/node_modules\/mimir-auth-hub\/dist\/index\.js$/);
    assert.match(out.resolved[1]!, /\/node_modules\/mimir-auth-hub\/dist\/client\/index\.js$/);
    assert.deepEqual(out.functions, Array(6).fill('function'));
    assert.deepEqual(out.headers, { 'x-api-key': 'mimir_a_b' });
  });

  it('TypeScript users get declarations: openHub, the client and the Fastify route options are typed', async () => {
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, types: ['node'], skipLibCheck: false },
      files: ['typed.ts'],
    }, null, 2));
    // Each @ts-expect-error fails the check if the line compiles, as it would were a type `any`.
    writeFileSync(join(app, 'typed.ts'), `
import Fastify from 'fastify';
import { loadConfig, mimirAuth, openHub, type Hub, type Principal } from 'mimir-auth-hub';
import { createMimirClient, type MimirClient } from 'mimir-auth-hub/client';

export async function start(dataDir: string): Promise<Hub> {
  const hub: Hub = await openHub(loadConfig({ MIMIR_DATA_DIR: dataDir }));
  const { key } = await hub.apiKeys.create({ name: 'typed', roles: ['viewer'] });
  const principal: Principal = await hub.authenticator.authenticate({ headers: { 'x-api-key': key } });
  const allowed: boolean = hub.authorizer.decide(principal, { permission: 'nodes:read', path: '/api/nodes' }).allowed;
  // @ts-expect-error openHub takes a Config
  await openHub('config');
  // @ts-expect-error roles is a string array
  await hub.apiKeys.create({ name: 'typed', roles: 'viewer' });
  const app = Fastify();
  await app.register(mimirAuth, { hub });
  app.get('/api/nodes', { config: { mimirAuth: { permission: 'nodes:read' } } }, (req) => ({ sub: req.principal?.sub, allowed }));
  // @ts-expect-error a permission is a string
  app.get('/api/other', { config: { mimirAuth: { permission: 42 } } }, () => ({}));
  app.delete('/api/nodes/:id', { preHandler: app.requirePermission('nodes:delete') }, () => ({ deleted: true }));
  // @ts-expect-error requirePermission takes the permission's name
  app.requirePermission(42);
  return hub;
}

export const client: MimirClient = createMimirClient({ url: 'https://mimir.example', mode: 'api-key', apiKey: 'mimir_a_b' });
// @ts-expect-error mode is one of the three flows
createMimirClient({ mode: 'telepathy' });
`);
    const r = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    assert.equal(r.code, 0, show(r));
  });

  it("the README's Library example runs verbatim against the installed package", async () => {
    const example = readmeLibraryExample();
    writeFileSync(join(app, 'readme-example.mjs'), example);
    const r = await run(process.execPath, ['readme-example.mjs'], app, childEnv({ HOME: work }));
    assert.equal(r.code, 0, show(r));
    // What the example prints: the decision, then one authenticated request through each adapter.
    assert.match(r.stdout, /allowed: true/, show(r));
    assert.match(r.stdout, /^Fastify 200 /m, show(r));
    assert.match(r.stdout, /^Express 200 /m, show(r));
  });
});
