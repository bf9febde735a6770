// Reference, not a baseline: bare node:http writing exactly the hub's answer (the same headers and
// JSON body, serialized per request), with no authentication, no router, no framework. What a
// server needs at the least to send that answer: the ceiling for the hub's lines.
// IPC `sign-cost`: CPU time of one jose signature in this process (issue 20, goal 3).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { port, ready } from '../lib/child.ts';

const { headers, body } = JSON.parse(process.env.BENCH_RESPONSE!) as { headers: string[]; body: unknown };
const prefix = '00000000-0000-4000-8000-';
let n = 0;
const server = createServer((_req, res) => {
  const text = JSON.stringify(body);
  res.writeHead(200, ['x-request-id', prefix + (++n).toString(16).padStart(12, '0'), ...headers, 'content-length', String(Buffer.byteLength(text))]);
  res.end(text);
});
server.keepAliveTimeout = 72_000;

/**
 * CPU µs (user + system, process.cpuUsage) per `SignJWT.sign` of a token with these header and
 * claims (the hub's own, decoded), with a fresh key of `alg`, over `count` signatures after a warm-up.
 */
async function signCost(alg: string, header: Record<string, unknown>, claims: JWTPayload, count: number): Promise<number> {
  const { privateKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const sign = () => new SignJWT({ ...claims }).setProtectedHeader({ ...header, alg }).sign(privateKey);
  for (let i = 0; i < 200; i++) await sign();
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await sign();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

server.listen(port(), '127.0.0.1', () => ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, async (op, args) => {
  if (op === 'sign-cost') return signCost(String(args.alg), args.header as Record<string, unknown>, args.claims as JWTPayload, Number(args.count ?? 2000));
  throw new Error(`unknown op ${op}`);
}));
