/**
 * A Mimir-shaped upstream for the proxy tests, built the way Mimir is: Express, the MCP
 * TypeScript SDK 1.x over streamable HTTP with sessions (`/mcp`), `/api/nodes/...` routes that
 * echo the identity headers they received, an SSE route the test paces event by event, and
 * `/health`. Every request it receives is recorded, so a test can prove what never arrived.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express, { type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { z } from 'zod';

export interface Received {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Upstream {
  url: string;
  received: Received[];
  /** Requests to paths starting with this prefix. */
  find(prefix: string): Received[];
  /** The SSE route waits for these: call `sse.release()` to send the next event. */
  sse: { release(): void; opened: Promise<void> };
  /** Resolves when a client of /api/hang goes away. */
  hangClosed: Promise<void>;
  hangOpened: Promise<void>;
  close(): Promise<void>;
}

export const TOOLS = ['memory_search', 'memory_node', 'whoami'] as const;
const IDENTITY = ['x-user-id', 'x-user-email', 'x-user-roles', 'authorization', 'x-api-key', 'cookie', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-token'];

function identity(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  return Object.fromEntries(IDENTITY.filter((h) => headers[h] !== undefined).map((h) => [h, headers[h]]));
}

function mcpServer(): McpServer {
  const server = new McpServer({ name: 'mimir-test-upstream', version: '1.0.0' });
  server.registerTool('memory_search', { description: 'Search the graph', inputSchema: { query: z.string() } },
    async ({ query }) => ({ content: [{ type: 'text' as const, text: `results for ${query}` }] }));
  server.registerTool('memory_node', { description: 'Create a node', inputSchema: { title: z.string() } },
    async ({ title }) => ({ content: [{ type: 'text' as const, text: `created ${title}` }] }));
  server.registerTool('whoami', { description: 'The identity headers Mimir received' },
    async (extra) => ({ content: [{ type: 'text' as const, text: JSON.stringify(identity(extra.requestInfo?.headers ?? {})) }] }));
  return server;
}

export async function startUpstream(): Promise<Upstream> {
  const app = express();
  const received: Received[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  let releaseNext: () => void = () => undefined;
  let waiting = 0;
  let markOpened!: () => void;
  const opened = new Promise<void>((r) => { markOpened = r; });
  let markHangOpened!: () => void;
  const hangOpened = new Promise<void>((r) => { markHangOpened = r; });
  let markHangClosed!: () => void;
  const hangClosed = new Promise<void>((r) => { markHangClosed = r; });

  app.use((req, _res, next) => {
    received.push({ method: req.method, path: req.path, headers: { ...req.headers } });
    next();
  });
  app.use(express.json({ limit: '4mb' }));

  app.get('/health', (_req, res) => { res.json({ status: 'healthy', service: 'mimir' }); });

  app.all('/mcp', async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'] as string | undefined;
    let transport = sessionId ? transports.get(sessionId) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || req.body?.method !== 'initialize') {
        res.status(sessionId ? 404 : 400).json({ jsonrpc: '2.0', id: null, error: { code: -32000, message: sessionId ? 'Session not found' : 'Bad Request: No valid session ID provided' } });
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => { transports.set(id, created); },
      });
      created.onclose = () => { if (created.sessionId) transports.delete(created.sessionId); };
      await mcpServer().connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, req.body);
  });

  app.get('/api/nodes/events', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    markOpened();
    let n = 0;
    const next = () => {
      n += 1;
      res.write(`id: ${n}\nevent: node\ndata: {"n":${n}}\n\n`);
      if (n === 3) res.end();
    };
    releaseNext = () => { waiting -= 1; next(); };
    waiting = 3;
    req.on('close', () => { waiting = 0; });
  });

  app.get('/api/nodes/hang', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    markHangOpened();
    res.on('close', () => markHangClosed());
  });

  app.all('/api/*rest', (req, res) => {
    res.json({ method: req.method, path: req.path, identity: identity(req.headers), body: req.body ?? null });
  });
  app.all('/v1/*rest', (req, res) => { res.json({ method: req.method, path: req.path, identity: identity(req.headers) }); });

  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    find: (prefix) => received.filter((r) => r.path.startsWith(prefix)),
    sse: { release: () => { if (waiting > 0) releaseNext(); }, opened },
    hangClosed,
    hangOpened,
    async close() {
      for (const t of transports.values()) await t.close().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
