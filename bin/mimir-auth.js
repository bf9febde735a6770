#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=50
// --max-semi-space-size=8: by default V8 sizes the young generation from the machine's memory and,
// under load, grows it and the heap it promotes into (measured: 162 MB committed for 28 MB live after
// 200,000 tokens); 8 MB semi-spaces keep the hub at about 200 MB resident instead of 263 MB, with no
// measurable cost in throughput (bench/README.md, goal 6).
// --heap-growing-percent=50: after each full collection V8 lets the old generation grow to 1.5× what
// survived, not the 1.1-4× it picks by itself from how fast collection went; a hub verifying a stream
// of new tokens promotes cache entries that die soon after. Measured (issue 20, goal 7: the installed
// package on SQLite, 200,000 distinct tokens): 194-280 MB resident without it, 150-158 MB with 30.
// 50, not 30, since cached tokens share what they hold alike (src/cache/intern.ts): 152 MB with
// either, and under paced MCP tools/call (800/s) 3 full collections in 10 s instead of 11, p99 4.3
// instead of 12.8 ms. `npm start` passes the same flags.
// Plain JavaScript on purpose: it must run (and refuse clearly) on an old Node.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(`mimir-auth: Node ${process.versions.node} is too old. An auth server must run on a supported, patched runtime: ` +
    'Node 22.19 or newer (Node 24 LTS recommended). Inside this project, npm scripts (npm start, npm test) bring Node 24 themselves; ' +
    'elsewhere install Node 24 or run `npx -p node@24 mimir-auth ...`.');
  process.exit(1);
}

// Which CLI: the .ts sources in a checkout of the repository (so it never runs a stale dist/ left
// behind by `npm pack`), the compiled dist/ when installed from the package. The package ships no
// src/; and Node refuses to strip types under node_modules, so an installed copy never runs
// sources even if some packaging put them there.
const self = realpathSync(fileURLToPath(import.meta.url));
const packageRoot = dirname(dirname(self));
const sources = join(packageRoot, 'src', 'cli', 'main.ts');
const compiled = join(packageRoot, 'dist', 'cli', 'main.js');
const installed = packageRoot.split(sep).includes('node_modules');
const useSources = !installed && existsSync(sources);

if (!useSources && !existsSync(compiled)) {
  console.error(`mimir-auth: ${compiled} is missing: this copy of mimir-auth-hub was not built. ` +
    'Reinstall the package, or run `npm run build` in its repository.');
  process.exit(1);
}

// Node 22.18+ strips types by default; a NODE_OPTIONS that turned it off gets it back here.
if (useSources && !process.features.typescript) {
  const result = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', self, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

const { main } = await import(pathToFileURL(useSources ? sources : compiled).href);
process.exitCode = await main(process.argv.slice(2));
