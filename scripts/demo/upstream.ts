/**
 * The demo's upstream: a small server shaped like Mimir (orneryd/Mimir) for the hub to front —
 * a few of its HTTP routes under /api (in-memory nodes) and its MCP endpoint at /mcp with a few
 * of its tools (MCP TypeScript SDK, streamable HTTP, stateless, JSON answers). Every answer says
 * who the hub told it the caller is (the X-User-* headers): what Mimir sees behind the hub.
 * For the demo only; the tests' Mimir double (test/helpers/mimir.ts) is the faithful one.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

export interface DemoUpstream {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface Node {
  id: string;
  type: string;
  properties: Record<string, unknown>;
  created: string;
}

/** Three of Mimir's tools (its MCP server has seventeen), with the names Mimir gives them. */
const TOOLS = [
  {
    name: 'memory_node',
    description: 'Create, read or list nodes of the memory graph (demo: in memory)',
    inputSchema: {
      type: 'object' as const,
      properties: {
        operation: { type: 'string', enum: ['add', 'get', 'query'] },
        type: { type: 'string' }, id: { type: 'string' }, properties: { type: 'object' },
      },
      required: ['operation'],
    },
  },
  {
    name: 'vector_search_nodes',
    description: 'Search the memory graph (demo: by text, not by vectors)',
    inputSchema: { type: 'object' as const, properties: { query: { type: 'string' }, limit: { type: 'number' } }, required: ['query'] },
  },
  {
    name: 'list_folders',
    description: 'List the folders Mimir indexes (demo: none)',
    inputSchema: { type: 'object' as const, properties: {} },
  },
];

export async function startDemoUpstream(options: { port?: number } = {}): Promise<DemoUpstream> {
  const nodes = new Map<string, Node>();
  const add = (type: string, properties: Record<string, unknown>): Node => {
    const node = { id: `node-${randomUUID().slice(0, 8)}`, type, properties, created: new Date().toISOString() };
    nodes.set(node.id, node);
    return node;
  };
  add('memory', { title: 'Welcome', content: 'This node lives in the demo upstream, behind the Mimir Auth Hub.' });
  add('todo', { title: 'Create an API key and call me through the hub' });

  const search = (query: string, limit = 10) =>
    [...nodes.values()].filter((n) => JSON.stringify(n.properties).toLowerCase().includes(query.toLowerCase())).slice(0, limit);

  const mcpServer = () => {
    const server = new Server({ name: 'Mimir-RAG-TODO-MCP (demo)', version: '4.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
    server.setRequestHandler(CallToolRequestSchema, (request) => {
      const args = (request.params.arguments ?? {}) as Record<string, unknown>;
      const answer = (value: unknown) => ({ content: [{ type: 'text' as const, text: JSON.stringify(value, null, 2) }] });
      switch (request.params.name) {
        case 'memory_node':
          if (args.operation === 'add') return answer(add(String(args.type ?? 'memory'), (args.properties ?? {}) as Record<string, unknown>));
          if (args.operation === 'get') return answer(nodes.get(String(args.id)) ?? { error: 'no such node' });
          return answer([...nodes.values()].filter((n) => args.type === undefined || n.type === args.type));
        case 'vector_search_nodes':
          return answer(search(String(args.query ?? ''), typeof args.limit === 'number' ? args.limit : 10));
        case 'list_folders':
          return answer({ folders: [] });
        default:
          return { content: [{ type: 'text' as const, text: `Unknown tool ${request.params.name}` }], isError: true };
      }
    });
    return server;
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body, null, 2));
  };
  /** Who the hub says is calling (Mimir reads nothing else when the hub fronts it). */
  const seenAs = (req: IncomingMessage) => ({
    user: req.headers['x-user-id'] ?? null, email: req.headers['x-user-email'] ?? null, roles: req.headers['x-user-roles'] ?? null,
  });

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as unknown;
      return body && typeof body === 'object' && !Array.isArray(body) ? body as Record<string, unknown> : {};
    } catch {
      return {};
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://upstream.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/mcp') {
      if (method !== 'POST') return json(res, 405, { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed (the demo upstream is stateless).' }, id: null });
      // Stateless streamable HTTP: a server and transport per request (MCP TypeScript SDK).
      const server = mcpServer();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => { void transport.close(); void server.close(); });
      await server.connect(transport);
      return transport.handleRequest(req, res);
    }
    if (path === '/health') return json(res, 200, { status: 'healthy', version: 'demo', mode: 'demo upstream' });
    if (path === '/api/nodes/types' && method === 'GET') {
      const counts = new Map<string, number>();
      for (const n of nodes.values()) counts.set(n.type, (counts.get(n.type) ?? 0) + 1);
      return json(res, 200, { route: 'GET /api/nodes/types', types: [...counts].map(([type, count]) => ({ type, count })), seen_as: seenAs(req) });
    }
    if (path === '/api/nodes/vector-search' && method === 'GET') {
      return json(res, 200, { route: 'GET /api/nodes/vector-search', results: search(url.searchParams.get('query') ?? ''), seen_as: seenAs(req) });
    }
    const byType = /^\/api\/nodes\/types\/([^/]+)$/.exec(path);
    if (byType && method === 'GET') {
      const type = decodeURIComponent(byType[1]!);
      return json(res, 200, { route: 'GET /api/nodes/types/:type', nodes: [...nodes.values()].filter((n) => n.type === type), seen_as: seenAs(req) });
    }
    if (path === '/api/nodes' && method === 'POST') {
      const body = await readJson(req);
      const node = add(typeof body.type === 'string' ? body.type : 'memory', (body.properties ?? {}) as Record<string, unknown>);
      return json(res, 201, { route: 'POST /api/nodes', node, seen_as: seenAs(req) });
    }
    const byId = /^\/api\/nodes\/([^/]+)$/.exec(path);
    if (byId && method === 'GET') {
      const node = nodes.get(decodeURIComponent(byId[1]!));
      return json(res, node ? 200 : 404, { route: 'GET /api/nodes/:id', ...(node ? { node } : { error: 'Node not found' }), seen_as: seenAs(req) });
    }
    return json(res, 404, { error: `The demo upstream has no ${method} ${path}`, seen_as: seenAs(req) });
  }

  const server: HttpServer = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`, port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
