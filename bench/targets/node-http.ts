// Reference, not a baseline: bare node:http writing exactly the hub's /auth/me response (the same
// headers and JSON body, serialized per request), with no authentication, no router, no framework.
// What a server needs at the least to send that answer: the ceiling for the hub's /auth/me lines.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
server.listen(port(), '127.0.0.1', () => ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
