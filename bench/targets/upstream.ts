// A tiny upstream standing in for Mimir: every path answers a small JSON document.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { port, ready } from '../lib/child.ts';

const body = JSON.stringify({ id: 'node-1', type: 'memory', properties: { title: 'bench', tags: ['a', 'b'] } });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port(), '127.0.0.1', () => ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
