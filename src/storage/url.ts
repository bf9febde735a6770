/**
 * Stores named by one URL (`mimir-auth storage copy --to`):
 *   sqlite:///path/to/file.db            (or sqlite:relative/path.db)
 *   redis://[user:password@]host:port[/db]   rediss:// for TLS
 *   redis+sentinel://[user:password@]host:port,host:port/mastername[?db=N]
 *   redis+cluster://[user:password@]host:port,host:port
 *   postgres://… or postgresql://…
 * A Redis key prefix other than MIMIR_REDIS_KEY_PREFIX goes in `?prefix=`.
 */
import { isAbsolute, resolve } from 'node:path';
import { redactUrl } from '../config/values.ts';

export interface HostPort {
  host: string;
  port: number;
}

export type StoreLocation =
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string; db: number; keyPrefix: string }
  | { kind: 'redis-sentinel'; sentinels: HostPort[]; name: string; username?: string; password?: string; tls: boolean; db: number; keyPrefix: string }
  | { kind: 'redis-cluster'; nodes: HostPort[]; username?: string; password?: string; tls: boolean; keyPrefix: string }
  | { kind: 'postgres'; url: string };

export const STORE_URL_FORMS = 'sqlite:///path/to/file.db, redis://host:port[/db], rediss://…, redis+sentinel://host:port,host:port/mastername, redis+cluster://host:port,host:port, postgres://user@host/db';

/** Parses a store URL; Error naming the accepted forms otherwise. `defaultPrefix`: MIMIR_REDIS_KEY_PREFIX. */
export function parseStoreUrl(text: string, defaultPrefix: string): StoreLocation {
  const bad = (why: string) => new Error(`${redactUrl(text)}: ${why}; accepted: ${STORE_URL_FORMS}`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'sqlite': {
      const path = text.startsWith('sqlite://') ? decodeURIComponent(text.slice('sqlite://'.length).split('?')[0]!) : decodeURIComponent(text.slice('sqlite:'.length));
      if (!path || path === '/') throw bad('names no database file');
      return { kind: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
    }
    case 'redis':
    case 'rediss': {
      const url = new URL(text);
      const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
      if (!Number.isInteger(db) || db < 0 || db > 15) throw bad('the database (the path) must be 0 to 15');
      const keyPrefix = url.searchParams.get('prefix') ?? defaultPrefix;
      url.search = '';
      return { kind: 'redis', url: url.toString(), db, keyPrefix };
    }
    case 'redis+sentinel':
    case 'rediss+sentinel':
    case 'redis+cluster':
    case 'rediss+cluster': {
      const m = /^[a-z+]+:\/\/(?:([^@/]*)@)?([^/?]+)(\/[^?]*)?(?:\?(.*))?$/i.exec(text);
      if (!m) throw bad('is not of the form scheme://host:port,host:port/…');
      const [, auth, hostList, path = '', query = ''] = m;
      const params = new URLSearchParams(query);
      const credentials = parseAuth(auth);
      const hosts = parseHostList(hostList!, bad);
      const tls = scheme.startsWith('rediss');
      const keyPrefix = params.get('prefix') ?? defaultPrefix;
      if (scheme.endsWith('cluster')) {
        if (path.length > 1) throw bad('a cluster has only database 0 and takes no path');
        return { kind: 'redis-cluster', nodes: hosts, ...credentials, tls, keyPrefix };
      }
      const name = decodeURIComponent(path.slice(1));
      if (!name) throw bad('names no master (the path: /mastername)');
      const db = Number(params.get('db') ?? '0');
      if (!Number.isInteger(db) || db < 0 || db > 15) throw bad('db must be 0 to 15');
      return { kind: 'redis-sentinel', sentinels: hosts, name, ...credentials, tls, db, keyPrefix };
    }
    case 'postgres':
    case 'postgresql':
      new URL(text); // throws on a malformed URL
      return { kind: 'postgres', url: text };
    default:
      throw bad('unknown scheme');
  }
}

function parseAuth(auth: string | undefined): { username?: string; password?: string } {
  if (!auth) return {};
  const colon = auth.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? auth : auth.slice(0, colon));
  const password = colon < 0 ? undefined : decodeURIComponent(auth.slice(colon + 1));
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** `host:port,host:port`, IPv6 as `[::1]:6379`. */
export function parseHostList(list: string, bad: (why: string) => Error): HostPort[] {
  const hosts = list.split(',').map((part) => {
    const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/i.exec(part.trim());
    const port = Number(m?.[3]);
    if (!m || port < 1 || port > 65535) throw bad(`"${part.trim()}" is not host:port`);
    return { host: m[1] ?? m[2]!, port };
  });
  if (!hosts.length) throw bad('names no host');
  return hosts;
}

/** A location as one line for people, the password hidden. */
export function describeLocation(l: StoreLocation): string {
  switch (l.kind) {
    case 'sqlite': return `sqlite (${l.path})`;
    case 'redis': return `redis (${redactUrl(l.url)}, db ${l.db})`;
    case 'redis-sentinel': return `redis sentinel (${l.sentinels.map(hostPort).join(',')}, master ${l.name}, db ${l.db})`;
    case 'redis-cluster': return `redis cluster (${l.nodes.map(hostPort).join(',')})`;
    case 'postgres': return `postgres (${redactUrl(l.url)})`;
  }
}

const hostPort = (h: HostPort) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`);
