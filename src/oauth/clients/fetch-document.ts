/**
 * Fetching a client ID metadata document without becoming an SSRF proxy: the host is resolved
 * once, every address is checked (no private, loopback, link-local or reserved ranges outside
 * development mode), and the connection goes to the checked address. Size and time are bounded,
 * redirects are not followed. The time bound is one deadline for the whole fetch (lookup,
 * connection, headers and body): a socket idle timeout alone would let a server that drips a
 * byte a second hold the authorization request open indefinitely.
 */
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';

export interface FetchLimits {
  maxBytes: number;
  /** Deadline of the whole fetch, body included. */
  timeoutMs: number;
  /** Development mode: loopback and private addresses (and http on loopback) allowed. */
  allowPrivate: boolean;
  /** Extra trusted CA certificates (PEM), added to Node's defaults. */
  ca?: string;
}

export class DocumentFetchError extends Error {}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, prefix, 'ipv4');
// ::/96 holds the deprecated IPv4-compatible forms (::127.0.0.1); ::ffff:0:0/96 is unwrapped below.
for (const [net, prefix] of [['::', 96], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6 && address.toLowerCase().startsWith('::ffff:')) return isPublicAddress(address.slice(7));
  return !blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export async function fetchJsonDocument(url: URL, limits: FetchLimits): Promise<{ json: unknown; maxAgeSeconds: number | undefined }> {
  const loopbackHttp = url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(limits.allowPrivate && loopbackHttp)) throw new DocumentFetchError('the client_id URL must use https');

  const lookup: RequestOptions['lookup'] = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return (callback as (e: Error | null, a: LookupAddress[]) => void)(err, []);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => !limits.allowPrivate && !isPublicAddress(a.address));
      if (bad || list.length === 0) {
        return (callback as (e: Error | null, a: LookupAddress[]) => void)(new DocumentFetchError(`the client_id host resolves to a non-public address`), []);
      }
      if ((options as { all?: boolean }).all) return (callback as (e: Error | null, a: LookupAddress[]) => void)(null, list);
      return (callback as unknown as (e: Error | null, a: string, f: number) => void)(null, list[0]!.address, list[0]!.family);
    });
  };
  // A literal IP skips lookup(): check it here.
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(literal) && !limits.allowPrivate && !isPublicAddress(literal)) throw new DocumentFetchError('the client_id host is a non-public address');

  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      finish();
    };
    const fail = (e: DocumentFetchError) => settle(() => {
      reject(e);
      req.destroy();
    });
    const deadline = setTimeout(() => fail(new DocumentFetchError(`the client_id URL did not deliver its document within ${limits.timeoutMs} ms`)), limits.timeoutMs);
    const tls = limits.ca ? { ca: [...rootCertificates, limits.ca] } : {};
    const req = request(url, { method: 'GET', lookup, headers: { accept: 'application/json' }, ...tls }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(new DocumentFetchError(`the client_id URL answered ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limits.maxBytes) return fail(new DocumentFetchError(`the client metadata document is larger than ${limits.maxBytes} bytes`));
        chunks.push(chunk);
      });
      res.on('end', () => settle(() => {
        try {
          const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          const m = /max-age=(\d+)/.exec(String(res.headers['cache-control'] ?? ''));
          resolve({ json, maxAgeSeconds: m ? Number(m[1]) : undefined });
        } catch {
          reject(new DocumentFetchError('the client metadata document is not JSON'));
        }
      }));
      res.on('error', () => fail(new DocumentFetchError('the client_id URL broke off its answer')));
    });
    req.on('error', (e) => fail(e instanceof DocumentFetchError ? e : new DocumentFetchError(`the client_id URL could not be fetched (${(e as NodeJS.ErrnoException).code ?? e.message})`)));
    req.end();
  });
}
