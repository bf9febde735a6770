/** Shared setup of the proxy tests: a real upstream and a real hub in front of it. */
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { fileURLToPath } from 'node:url';
import { startHub, type StartOptions, type TestHub } from '../helpers/hub.ts';
import { startUpstream, type Upstream } from './upstream.ts';

export const RBAC_FIXTURE = fileURLToPath(new URL('../fixtures/mimir-rbac.json', import.meta.url));

export interface Front {
  upstream: Upstream;
  t: TestHub;
  close(): Promise<void>;
}

export async function startFront(options: StartOptions = {}): Promise<Front> {
  const upstream = await startUpstream();
  let t: TestHub;
  try {
    t = await startHub({
      storage: 'memory',
      ...options,
      env: { MIMIR_UPSTREAM_URL: upstream.url, MIMIR_RBAC_CONFIG: RBAC_FIXTURE, ...options.env },
    });
  } catch (e) {
    // A hub that does not start must fail the file, not leave the upstream listening until the runner's timeout.
    await upstream.close();
    throw e;
  }
  return {
    upstream, t,
    async close() {
      await t.close();
      await upstream.close();
    },
  };
}

/** {@link startFront}, and an API key of its hub holding `roles`. */
export async function frontWithKey(roles: string[], options: StartOptions = {}): Promise<{ f: Front; key: string }> {
  const f = await startFront(options);
  return { f, key: (await f.t.hub.apiKeys.create({ name: 'dev', roles })).key };
}

export interface McpSession {
  listTools(): Promise<string[]>;
  call(name: string, args?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

/** An MCP client of either SDK generation, through the hub, with these request headers. */
export async function mcpClient(generation: 1 | 2, hubUrl: string, headers: Record<string, string>): Promise<McpSession> {
  const url = new URL(`${hubUrl}/mcp`);
  const info = { name: `proxy-test-v${generation}`, version: '1.0.0' };
  const client = generation === 1 ? new ClientV1(info) : new ClientV2(info);
  const transport = generation === 1 ? new TransportV1(url, { requestInit: { headers } }) : new TransportV2(url, { requestInit: { headers } });
  await (client as ClientV1).connect(transport as TransportV1);
  return {
    async listTools() {
      const r = await (client as ClientV1).listTools();
      return r.tools.map((t) => t.name).sort();
    },
    async call(name, args = {}) {
      const r = await (client as ClientV1).callTool({ name, arguments: args });
      const content = r.content as Array<{ type: string; text?: string }>;
      return content.map((c) => c.text ?? '').join('');
    },
    async close() {
      await (client as ClientV1).close();
    },
  };
}
