#!/usr/bin/env node
// Plain JavaScript on purpose: it must run (and refuse clearly) on an old Node.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 13)) {
  console.error(`mimir-auth: Node ${process.versions.node} is too old. An auth server must run on a supported, patched runtime: ` +
    'Node 22.13 or newer (Node 24 LTS recommended). Inside this project, npm scripts (npm start, npm test) bring Node 24 themselves; ' +
    'elsewhere install Node 24 or run `npx -p node@24 mimir-auth ...`.');
  process.exit(1);
}

// Node 22.13–22.17 can run TypeScript only with --experimental-strip-types.
if (!process.features.typescript) {
  const result = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
