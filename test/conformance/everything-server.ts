/**
 * The MCP server the conformance suite's server scenarios expect: every tool, resource, prompt,
 * log, completion and SSE behaviour that `@modelcontextprotocol/conformance` 0.1.16 exercises
 * (`conformance list`, "Server scenarios"), written with the MCP TypeScript SDK 1.x over
 * streamable HTTP with sessions — the way Mimir serves `/mcp`.
 *
 * Adapted from the suite's own reference server, examples/servers/typescript/everything-server.ts
 * at tag v0.1.16 of github.com/modelcontextprotocol/conformance (MIT). Differences: a function that
 * listens on a loopback port and closes, no console output, and a 500 ms SSE retry (the reference
 * uses 5 s) so the polling scenario stays quick, 404 for a session ID it does not hold (the
 * 2025-11-25 transport's rule, which 0.2's server-session-lifecycle checks), and sampling and
 * elicitation requests sent with the tool's `sendRequest`, on the tool call's own response stream.
 * `server.server.request` (the reference) sends them on the standalone GET stream, and the SDK
 * drops a message for that stream when the client has not opened it yet: under load the request
 * was lost and the scenario hung until the CLI was killed (about 1 run in 4 with 3 in parallel).
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport, type EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { ElicitResultSchema, ListToolsRequestSchema, type ElicitRequest, type JSONRPCMessage, type ListToolsResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { toJsonSchemaCompat } from '@modelcontextprotocol/sdk/server/zod-json-schema-compat.js';
import type { Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

// 1x1 red PNG and a minimal WAV, the suite's own samples.
const IMAGE = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const AUDIO = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';

/** SEP-1613: a raw JSON Schema 2020-12 that tools/list must carry unchanged ($schema, $defs, additionalProperties). */
const JSON_SCHEMA_2020_12 = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object' as const,
  $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
  properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
  additionalProperties: false,
};

const SSE_RETRY_MS = 500;

export interface EverythingServer {
  /** The MCP endpoint, `http://127.0.0.1:<port>/mcp`. */
  url: string;
  /** The upstream root (for MIMIR_UPSTREAM_URL). */
  origin: string;
  close(): Promise<void>;
}

const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** SEP-1699 resumability: events kept in memory, replayed after a Last-Event-ID. */
function eventStore(): EventStore {
  const events = new Map<string, { message: JSONRPCMessage; streamId: string }>();
  return {
    async storeEvent(streamId, message) {
      const eventId = `${streamId}::${Date.now()}_${randomUUID()}`;
      events.set(eventId, { message, streamId });
      return eventId;
    },
    async replayEventsAfter(lastEventId, { send }) {
      const streamId = lastEventId.split('::')[0]!;
      const later = [...events].filter(([id, e]) => e.streamId === streamId && id > lastEventId).sort(([a], [b]) => a.localeCompare(b));
      for (const [id, { message }] of later) if (Object.keys(message).length > 0) await send(id, message);
      return streamId;
    },
  };
}

function elicitationTool(server: McpServer, name: string, description: string, message: string, properties: Record<string, unknown>, required: string[] = []) {
  server.registerTool(name, { description, inputSchema: {} }, async (_args, { sendRequest }) => {
    try {
      const request = { method: 'elicitation/create', params: { message, requestedSchema: { type: 'object', properties, required } } } as ElicitRequest;
      const r = await sendRequest(request, ElicitResultSchema);
      return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
    } catch (e) {
      return text(`Elicitation not supported or error: ${(e as Error).message}`);
    }
  });
}

function mcpServer(transports: Map<string, StreamableHTTPServerTransport>): McpServer {
  const server = new McpServer(
    { name: 'mcp-conformance-test-server', version: '1.0.0' },
    { capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: { listChanged: true }, logging: {}, completions: {} } },
  );
  const log = (data: string) => {
    server.server.notification({ method: 'notifications/message', params: { level: 'info', logger: 'conformance-test-server', data } }).catch(() => undefined);
  };

  // ===== tools =====
  server.registerTool('test_simple_text', { description: 'Tests simple text content response' }, async () => text('This is a simple text response for testing.'));
  server.registerTool('test_image_content', { description: 'Tests image content response' },
    async () => ({ content: [{ type: 'image' as const, data: IMAGE, mimeType: 'image/png' }] }));
  server.registerTool('test_audio_content', { description: 'Tests audio content response' },
    async () => ({ content: [{ type: 'audio' as const, data: AUDIO, mimeType: 'audio/wav' }] }));
  server.registerTool('test_embedded_resource', { description: 'Tests embedded resource content response' },
    async () => ({ content: [{ type: 'resource' as const, resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] }));
  server.registerTool('test_multiple_content_types', { description: 'Tests response with multiple content types (text, image, resource)' }, async () => ({
    content: [
      { type: 'text' as const, text: 'Multiple content types test:' },
      { type: 'image' as const, data: IMAGE, mimeType: 'image/png' },
      { type: 'resource' as const, resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
    ],
  }));
  server.registerTool('test_tool_with_logging', { description: 'Tests tool that emits log messages during execution', inputSchema: {} }, async (_args, { sendNotification }) => {
    for (const [i, data] of ['Tool execution started', 'Tool processing data', 'Tool execution completed'].entries()) {
      if (i > 0) await sleep(50);
      await sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
    }
    return text('Tool with logging executed successfully');
  });
  server.registerTool('test_tool_with_progress', { description: 'Tests tool that reports progress notifications', inputSchema: {} }, async (_args, { sendNotification, _meta }) => {
    const progressToken = _meta?.progressToken ?? 0;
    for (const [i, progress] of [0, 50, 100].entries()) {
      if (i > 0) await sleep(50);
      await sendNotification({ method: 'notifications/progress', params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` } });
    }
    return text(String(progressToken));
  });
  server.registerTool('test_error_handling', { description: 'Tests error response handling' }, async () => {
    throw new Error('This tool intentionally returns an error for testing');
  });
  // SEP-1699: closes the POST's SSE stream mid-call; the answer arrives after the client reconnects.
  server.registerTool('test_reconnection', { description: 'Tests SSE stream disconnection and client reconnection (SEP-1699)', inputSchema: {} }, async (_args, { sessionId, requestId }) => {
    const transport = sessionId ? transports.get(sessionId) : undefined;
    if (transport && requestId !== undefined) transport.closeSSEStream(requestId);
    await sleep(100);
    return text('Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.');
  });
  server.registerTool('test_sampling', { description: 'Tests server-initiated sampling (LLM completion request)', inputSchema: { prompt: z.string().describe('The prompt to send to the LLM') } }, async ({ prompt }, { sendRequest }) => {
    try {
      const r = await sendRequest(
        { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 } },
        z.object({ content: z.object({ text: z.string().optional() }).passthrough().optional() }).passthrough(),
      );
      return text(`LLM response: ${r.content?.text ?? 'No response'}`);
    } catch (e) {
      return text(`Sampling not supported or error: ${(e as Error).message}`);
    }
  });
  server.registerTool('test_elicitation', { description: 'Tests server-initiated elicitation (user input request)', inputSchema: { message: z.string().describe('The message to show the user') } }, async ({ message }, { sendRequest }) => {
    try {
      const r = await sendRequest({
        method: 'elicitation/create',
        params: { message, requestedSchema: { type: 'object', properties: { response: { type: 'string', description: "User's response" } }, required: ['response'] } },
      }, ElicitResultSchema);
      return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
    } catch (e) {
      return text(`Elicitation not supported or error: ${(e as Error).message}`);
    }
  });
  elicitationTool(server, 'test_elicitation_sep1034_defaults', 'Tests elicitation with default values per SEP-1034', 'Please review and update the form fields with defaults', {
    name: { type: 'string', description: 'User name', default: 'John Doe' },
    age: { type: 'integer', description: 'User age', default: 30 },
    score: { type: 'number', description: 'User score', default: 95.5 },
    status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
    verified: { type: 'boolean', description: 'Verification status', default: true },
  });
  elicitationTool(server, 'test_elicitation_sep1330_enums', 'Tests elicitation with enum schema improvements per SEP-1330', 'Please select options from the enum fields', {
    untitledSingle: { type: 'string', description: 'Select one option', enum: ['option1', 'option2', 'option3'] },
    titledSingle: { type: 'string', description: 'Select one option with titles', oneOf: [{ const: 'value1', title: 'First Option' }, { const: 'value2', title: 'Second Option' }, { const: 'value3', title: 'Third Option' }] },
    legacyEnum: { type: 'string', description: 'Select one option (legacy)', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
    untitledMulti: { type: 'array', description: 'Select multiple options', minItems: 1, maxItems: 3, items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
    titledMulti: { type: 'array', description: 'Select multiple options with titles', minItems: 1, maxItems: 3, items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }, { const: 'value3', title: 'Third Choice' }] } },
  });
  server.registerTool('json_schema_2020_12_tool', {
    description: 'Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)',
    inputSchema: { name: z.string().optional(), address: z.object({ street: z.string().optional(), city: z.string().optional() }).optional() },
  }, async (args) => text(`JSON Schema 2020-12 tool called with: ${JSON.stringify(args)}`));

  // ===== resources =====
  server.registerResource('static-text', 'test://static-text', { title: 'Static Text Resource', description: 'A static text resource for testing', mimeType: 'text/plain' },
    async () => ({ contents: [{ uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] }));
  server.registerResource('static-binary', 'test://static-binary', { title: 'Static Binary Resource', description: 'A static binary resource (image) for testing', mimeType: 'image/png' },
    async () => ({ contents: [{ uri: 'test://static-binary', mimeType: 'image/png', blob: IMAGE }] }));
  server.registerResource('template', new ResourceTemplate('test://template/{id}/data', { list: undefined }),
    { title: 'Resource Template', description: 'A resource template with parameter substitution', mimeType: 'application/json' },
    async (uri, { id }) => ({ contents: [{ uri: uri.toString(), mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${String(id)}` }) }] }));
  server.registerResource('watched-resource', 'test://watched-resource', { title: 'Watched Resource', description: 'A resource clients subscribe to', mimeType: 'text/plain' },
    async () => ({ contents: [{ uri: 'test://watched-resource', mimeType: 'text/plain', text: 'Watched resource content' }] }));
  const subscriptions = new Set<string>();
  server.server.setRequestHandler(z.object({ method: z.literal('resources/subscribe'), params: z.object({ uri: z.string() }).passthrough() }).passthrough(), async (r) => {
    subscriptions.add(r.params.uri);
    log(`Subscribed to resource: ${r.params.uri}`);
    return {};
  });
  server.server.setRequestHandler(z.object({ method: z.literal('resources/unsubscribe'), params: z.object({ uri: z.string() }).passthrough() }).passthrough(), async (r) => {
    subscriptions.delete(r.params.uri);
    log(`Unsubscribed from resource: ${r.params.uri}`);
    return {};
  });

  // ===== prompts =====
  server.registerPrompt('test_simple_prompt', { title: 'Simple Test Prompt', description: 'A simple prompt without arguments' },
    async () => ({ messages: [{ role: 'user' as const, content: { type: 'text' as const, text: 'This is a simple prompt for testing.' } }] }));
  server.registerPrompt('test_prompt_with_arguments', {
    title: 'Prompt With Arguments', description: 'A prompt with required arguments',
    argsSchema: { arg1: z.string().describe('First test argument'), arg2: z.string().describe('Second test argument') },
  }, async ({ arg1, arg2 }) => ({ messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }] }));
  server.registerPrompt('test_prompt_with_embedded_resource', {
    title: 'Prompt With Embedded Resource', description: 'A prompt that includes an embedded resource',
    argsSchema: { resourceUri: z.string().describe('URI of the resource to embed') },
  }, async ({ resourceUri }) => ({
    messages: [
      { role: 'user' as const, content: { type: 'resource' as const, resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
      { role: 'user' as const, content: { type: 'text' as const, text: 'Please process the embedded resource above.' } },
    ],
  }));
  server.registerPrompt('test_prompt_with_image', { title: 'Prompt With Image', description: 'A prompt that includes image content' }, async () => ({
    messages: [
      { role: 'user' as const, content: { type: 'image' as const, data: IMAGE, mimeType: 'image/png' } },
      { role: 'user' as const, content: { type: 'text' as const, text: 'Please analyze the image above.' } },
    ],
  }));

  // ===== logging, completion =====
  server.server.setRequestHandler(z.object({ method: z.literal('logging/setLevel'), params: z.object({ level: z.string() }).passthrough() }).passthrough(), async (r) => {
    log(`Log level set to: ${r.params.level}`);
    return {};
  });
  server.server.setRequestHandler(z.object({ method: z.literal('completion/complete') }).passthrough(),
    async () => ({ completion: { values: [], total: 0, hasMore: false } }));

  // SEP-1613: tools/list answers the raw 2020-12 schema for its tool; the SDK's conversion would drop $schema, $defs and additionalProperties.
  type Registered = { enabled: boolean; title?: string; description?: string; inputSchema?: Parameters<typeof toJsonSchemaCompat>[0]; annotations?: Tool['annotations']; _meta?: Tool['_meta'] };
  server.server.setRequestHandler(ListToolsRequestSchema, (): ListToolsResult => {
    const registered = (server as unknown as { _registeredTools: Record<string, Registered> })._registeredTools;
    return {
      tools: Object.entries(registered).filter(([, t]) => t.enabled).map(([name, t]): Tool => {
        if (name === 'json_schema_2020_12_tool') return { name, description: t.description, inputSchema: JSON_SCHEMA_2020_12 };
        const inputSchema = t.inputSchema ? toJsonSchemaCompat(t.inputSchema, { strictUnions: true, pipeStrategy: 'input' }) as Tool['inputSchema'] : { type: 'object' as const, properties: {} };
        return { name, title: t.title, description: t.description, inputSchema, annotations: t.annotations, _meta: t._meta };
      }),
    };
  });
  return server;
}

/** Listens on a free loopback port. */
export async function startEverythingServer(): Promise<EverythingServer> {
  // createMcpExpressApp: the SDK's DNS-rebinding protection (Host must be a loopback name).
  const app = createMcpExpressApp();
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const servers = new Map<string, McpServer>();
  const noSession = (res: Response) => res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Invalid or missing session ID' }, id: null });
  // 2025-11-25 transports, session management: a session ID the server does not hold (terminated
  // or never issued) MUST be answered 404, so the client starts a new session.
  const unknownSession = (res: Response) => res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });

  app.post('/mcp', async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'] as string | undefined;
    let transport = sessionId ? transports.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId) return void unknownSession(res);
      if (req.body?.method !== 'initialize') return void noSession(res);
      const server = mcpServer(transports);
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: eventStore(),
        retryInterval: SSE_RETRY_MS,
        onsessioninitialized: (id) => { transports.set(id, created); servers.set(id, server); },
      });
      created.onclose = () => {
        const id = created.sessionId;
        if (id && transports.delete(id)) {
          void servers.get(id)?.close();
          servers.delete(id);
        }
      };
      await server.connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res, req.body);
  });
  for (const method of ['get', 'delete'] as const) {
    app[method]('/mcp', async (req: Request, res: Response) => {
      const sessionId = req.headers['mcp-session-id'] as string | undefined;
      const transport = sessionId ? transports.get(sessionId) : undefined;
      if (!transport) return void (sessionId ? unknownSession(res) : res.status(400).send('Invalid or missing session ID'));
      await transport.handleRequest(req, res);
    });
  }

  const http: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    url: `${origin}/mcp`,
    origin,
    async close() {
      await Promise.all([...servers.values()].map((s) => s.close()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
