/**
 * The value parsers of the configuration (zod), each with a message that says what would be
 * accepted, and the value sets they accept. Used by the variables' descriptions (variables.ts).
 */
import proxyAddr from '@fastify/proxy-addr';
import { isIP, isIPv6 } from 'node:net';
import { z } from 'zod';

export type AuthMethod = 'api-key' | 'oauth' | 'jwt';
export type SigningAlgorithm = 'RS256' | 'ES256' | 'EdDSA' | 'HS256';
export type StorageKind = 'sqlite' | 'redis' | 'memory' | 'postgres';
export type ProviderKind = 'okta' | 'auth0' | 'azure' | 'google' | 'keycloak' | 'cognito' | 'generic';

export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'ES256', 'EdDSA', 'HS256'];
export const PROVIDER_KINDS: readonly ProviderKind[] = ['okta', 'auth0', 'azure', 'google', 'keycloak', 'cognito', 'generic'];

export const show = (v: unknown) => JSON.stringify(v);

export const oneOf = <T extends string>(values: readonly T[]) =>
  z.string().trim().refine((s): s is T => (values as readonly string[]).includes(s), {
    error: (iss) => `${show(iss.input)} is not one of ${values.join(', ')}`,
  }).transform((s) => s as T);

export const oneOfCaseless = <T extends string>(values: readonly T[]) =>
  z.string().trim().transform((s, ctx) => {
    const hit = values.find((x) => x.toLowerCase() === s.toLowerCase());
    if (!hit) ctx.addIssue({ code: 'custom', message: `${show(s)} is not one of ${values.join(', ')}` });
    return hit as T;
  });

export const bool = z.string().trim().transform((s, ctx) => {
  const l = s.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(l)) return true;
  if (['false', '0', 'no', 'off'].includes(l)) return false;
  ctx.addIssue({ code: 'custom', message: `${show(s)} is not a boolean (true or false)` });
  return false;
});

export const int = (min: number, max: number, unit = '') => z.string().trim().transform((s, ctx) => {
  const n = /^-?\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    ctx.addIssue({ code: 'custom', message: `${show(s)} is not a whole number from ${min} to ${max}${unit}` });
  }
  return n;
});

const checkedHttpUrl = (asWritten: boolean) => z.string().trim().transform((s, ctx) => {
  let u: URL | undefined;
  try { u = new URL(s); } catch { /* reported below */ }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    ctx.addIssue({ code: 'custom', message: `${show(s)} is not an http(s) URL` });
    return s;
  }
  return asWritten ? s : s.replace(/\/+$/, '') || s;
});

/** An http(s) URL, trailing slashes removed (a base URL that paths are appended to). */
export const httpUrl = checkedHttpUrl(false);

/**
 * An OpenID issuer, kept as written: `iss` is compared character for character (OpenID Connect
 * Discovery 1.0 §4.3, Core §3.1.3.7 step 2), and some issuers end with "/" (Authentik's, Auth0's).
 */
export const issuerUrl = checkedHttpUrl(true);

/**
 * A CSS hex colour (`#rgb` or `#rrggbb`), as written into the pages' stylesheet; the `#` may be
 * left out, since in a .env file an unquoted `#` starts a comment.
 */
export const hexColour = z.string().trim().refine((s) => /^#?(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(s), {
  error: (iss) => `${show(iss.input)} is not a CSS hex colour such as #2357d9`,
}).transform((s) => `#${s.replace(/^#/, '').toLowerCase()}`);

/**
 * An image the pages show: an https URL without credentials (its origin joins the pages' CSP
 * img-src), or a path on the hub's own origin (`/brand/logo.svg`, not `//host/...`).
 */
export const imageUrl = z.string().trim().refine((s) => {
  if (/[\s"'<>\\]/.test(s)) return false;
  if (s.startsWith('/')) return !s.startsWith('//');
  try {
    const u = new URL(s);
    return u.protocol === 'https:' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}, { error: (iss) => `${show(iss.input)} is not an https URL or a path on the hub's own origin (starting with a single /)` });

export const path = z.string().trim().refine((s) => s.startsWith('/'), { error: (iss) => `${show(iss.input)} is not a path starting with /` });

export const list = z.string().transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean));

/**
 * MIMIR_TRUST_PROXY: true, false, or a comma-separated list of proxy addresses: IPs, CIDR ranges
 * (`10.0.0.0/8`, `fd00::/8`), netmasks (`10.0.0.0/255.0.0.0`) or the names loopback, linklocal,
 * uniquelocal. Each entry is compiled here by the library Fastify compiles the list with
 * (@fastify/proxy-addr), so one it would refuse is a configuration error naming the variable, not
 * a crash at start-up. `/0` (every address) is refused: that is `true`.
 */
export const trustProxy = z.string().trim().transform((s, ctx): boolean | string[] => {
  const lower = s.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false' || lower === '') return false;
  const entries = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const entry of entries) {
    let refused = proxyEntryProblem(entry);
    if (!refused) {
      try {
        proxyAddr.compile(entry);
      } catch (e) {
        refused = (e as Error).message;
      }
    }
    if (refused) {
      ctx.addIssue({ code: 'custom', message: `${show(entry)} is not a proxy address (${refused}); give true, false, or a comma-separated list of IPs and CIDR ranges (e.g. 10.0.0.0/8,127.0.0.1 or loopback)` });
      return false;
    }
  }
  return entries;
});

/** proxy-addr's names for address ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * What the hub refuses in a MIMIR_TRUST_PROXY entry before proxy-addr reads it: an address not
 * written as Node reads addresses (proxy-addr takes `010.0.0.1` as octal, 8.0.0.1, and `1` as
 * 0.0.0.1), and a range of every address, IPv4-mapped ones included (`::ffff:0.0.0.0/96`).
 */
function proxyEntryProblem(entry: string): string | undefined {
  if (PROXY_RANGE_NAMES.has(entry)) return undefined;
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  const suffix = slash === -1 ? undefined : entry.slice(slash + 1);
  const family = isIP(address);
  if (family === 0) return 'not an IP address in its usual form';
  if (suffix === undefined) return undefined;
  if (family === 4 && isIP(suffix) === 4) return suffix === '0.0.0.0' ? 'a /0 range is every address: set MIMIR_TRUST_PROXY=true for that' : undefined;
  if (!/^[0-9]{1,3}$/.test(suffix)) return 'the range is not a prefix length or a netmask';
  const mapped = family === 6 && /^::ffff:/i.test(address) ? 96 : 0;
  return Number(suffix) <= mapped ? 'a /0 range is every address: set MIMIR_TRUST_PROXY=true for that' : undefined;
}

/** A server address: a host name or IP (IPv6 without its brackets) and a TCP port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)):(\d{1,5})$/;

/** `host:port,host:port,…` (IPv6 as `[::1]:26379`), at least one, every entry valid. */
export const hostPortList = z.string().transform((s, ctx) => {
  const entries = s.split(',').map((x) => x.trim());
  const out: HostPort[] = [];
  for (const entry of entries) {
    const m = HOST_PORT.exec(entry);
    const host = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (!m || !host || (m[1] !== undefined && !isIPv6(host)) || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `${show(entry)} is not host:port; give a comma-separated list of host:port, IPv6 in brackets (e.g. redis-a:26379,10.0.0.2:26379,[::1]:26379)` });
      return out;
    }
    out.push({ host, port });
  }
  return out;
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A PostgreSQL connection URL (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS). */
export const postgresUrl = z.string().trim().refine((s) => /^postgres(ql)?:\/\/[^\s]+$/.test(s) && redactUrl(s) !== '(unparseable URL)', {
  error: (iss) => `${show(redactUrl(String(iss.input)))} is not a postgres:// or postgresql:// URL (postgres://user:password@host:5432/database)`,
});

/** The URL with any password masked, for messages and logs; never echoes what it cannot parse. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

