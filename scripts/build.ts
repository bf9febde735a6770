/**
 * `npm run build`, and `prepack` (so `npm pack` and `npm publish` always ship a fresh build):
 * compiles src/ to dist/ (JavaScript and declarations) with tsconfig.build.json.
 *
 * Node strips types only outside node_modules, so an installed package must be JavaScript. Inside
 * the repository nothing reads dist/: tests, `npm start` and `npx mimir-auth` run the .ts sources
 * (bin/mimir-auth.js chooses).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const log = (message: string) => console.error(`[build] ${message}`);

// Start empty: a module moved or deleted in src/ must not live on in the package.
rmSync(dist, { recursive: true, force: true });
log('tsc -p tsconfig.build.json');
const tsc = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) {
  log(`tsc failed (${tsc.error?.message ?? `exit ${tsc.status ?? tsc.signal}`})`);
  process.exit(1);
}

// What package.json's `exports` and `bin` point at.
const entries = ['index.js', 'index.d.ts', 'client/index.js', 'client/index.d.ts', 'cli/main.js'];
const missing = entries.filter((file) => !existsSync(join(dist, file)));
if (missing.length) {
  log(`dist/ lacks ${missing.join(', ')}`);
  process.exit(1);
}

// A relative import still naming a .ts file would fail at run time in node_modules
// (rewriteRelativeImportExtensions rewrites literal specifiers only).
const tsImport = /(?:\bfrom|\bimport\s*\(?)\s*['"](\.{1,2}\/[^'"\n]*\.ts)['"]/g;
const offenders: string[] = [];
for (const file of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.js')) continue;
  for (const match of readFileSync(join(dist, file), 'utf8').matchAll(tsImport)) offenders.push(`dist/${file}: ${match[1]}`);
}
if (offenders.length) {
  log(`compiled JavaScript still imports .ts files:\n  ${offenders.join('\n  ')}`);
  process.exit(1);
}
log('dist/ ready');
