// A tiny upstream standing in for Mimir: every path answers a small JSON document, except POST /mcp,
// answered as an MCP server would: `initialize` with a session (Mcp-Session-Id), `tools/call` with
// a small tool result, anything else with an empty result.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { port, ready } from '../lib/child.ts';

const body = JSON.stringify({ id: 'node-1', type: 'memory', properties: { title: 'bench', tags: ['a', 'b'] } });
const SESSION = 'bench-upstream-session';
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || !req.url?.startsWith('/mcp')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    let message: { id?: unknown; method?: string } = {};
    try { message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof message; } catch { /* answered as an empty result */ }
    const result = message.method === 'initialize'
      ? { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'bench-upstream', version: '1.0.0' } }
      : message.method === 'tools/call' ? { content: [{ type: 'text', text: body }], isError: false } : {};
    const text = JSON.stringify({ jsonrpc: '2.0', id: message.id ?? null, result });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'mcp-session-id': SESSION });
    res.end(text);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port(), '127.0.0.1', () => ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
