/**
 * `npm run docs`: regenerates what is written from the variables' one description
 * (src/config/variables.ts): `.env.example` and the README's configuration reference.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envExample } from '../src/config/index.ts';
import { withReference } from '../src/config/reference.ts';

const root = join(import.meta.dirname, '..');
const readmePath = join(root, 'README.md');
writeFileSync(join(root, '.env.example'), envExample());
writeFileSync(readmePath, withReference(readFileSync(readmePath, 'utf8')));
console.log('wrote .env.example and the configuration reference in README.md');
