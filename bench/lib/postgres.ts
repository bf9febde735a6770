/** A database of its own for a bench run, on a server where the bench's user may CREATE DATABASE. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

async function maintenance(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates `<prefix>_<random>` on the server of `serverUrl`; `url` names it, `drop()` removes it. */
export async function freshDatabase(serverUrl: string, prefix = 'mimir_bench'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await maintenance(serverUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name, url: url.toString(),
    drop: () => maintenance(serverUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
  };
}
