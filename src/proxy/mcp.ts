/**
 * MCP awareness for the proxy, framework-free: reading the JSON-RPC message of a `/mcp` POST,
 * checking the SEP-2243 standard headers against it (revision 2026-07-28, "Streamable HTTP"),
 * the permission a message needs, and filtering `tools/list` results — as JSON or as an SSE
 * stream, event by event.
 *
 * Authorization always reads the body, never the headers: the headers are only cross-checked,
 * so an intermediary routing on `Mcp-Name` and the server acting on `params.name` cannot be
 * told two different stories.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** The first revision of the stateless era: no sessions, no GET stream, standard headers. */
export const FIRST_MODERN_REVISION = '2026-07-28';
export const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
/** SEP-2243 HeaderMismatch, as the MCP SDKs and conformance suite emit it (HTTP 400). */
export const HEADER_MISMATCH = -32020;
export const INVALID_REQUEST = -32600;
export const PARSE_ERROR = -32700;

/** SEP-2243 "Required For": which body field `Mcp-Name` mirrors. */
const NAME_SOURCE: Record<string, string> = {
  'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri',
  'tasks/get': 'taskId', 'tasks/update': 'taskId', 'tasks/cancel': 'taskId',
};

export interface JsonRpcMessage {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: unknown;
}

export class McpProtocolError extends Error {
  readonly code: number;
  readonly id: string | number | null;
  constructor(code: number, message: string, id: string | number | null = null) {
    super(message);
    this.name = 'McpProtocolError';
    this.code = code;
    this.id = id;
  }

  /** JSON-RPC 2.0 §5.1 error object. */
  toJSON(): Record<string, unknown> {
    return { jsonrpc: '2.0', id: this.id, error: { code: this.code, message: this.message } };
  }
}

export function isModernRevision(version: string | undefined): boolean {
  return typeof version === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= FIRST_MODERN_REVISION;
}

/**
 * One JSON-RPC message. Batches were removed from MCP in 2025-06-18, so an array is refused
 * rather than authorized element by element.
 */
export function parseMcpMessage(body: Buffer): JsonRpcMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new McpProtocolError(PARSE_ERROR, 'The request body is not valid JSON.');
  }
  if (Array.isArray(parsed)) throw new McpProtocolError(INVALID_REQUEST, 'JSON-RPC batches are not supported by MCP; send one message per POST.');
  if (!parsed || typeof parsed !== 'object') throw new McpProtocolError(INVALID_REQUEST, 'The request body is not a JSON-RPC message.');
  const m = parsed as Record<string, unknown>;
  const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  // JSON-RPC 2.0 §4: an id is a string, a number or null. Any other id would be answered (and a
  // tools/list result filtered) by a rule written for the ones that exist.
  if (m.id !== undefined && m.id !== null && typeof m.id !== 'string' && typeof m.id !== 'number') {
    throw new McpProtocolError(INVALID_REQUEST, 'The id must be a string, a number or null.');
  }
  if (m.jsonrpc !== '2.0') throw new McpProtocolError(INVALID_REQUEST, 'The message is not JSON-RPC 2.0.', id);
  if (m.method !== undefined && typeof m.method !== 'string') throw new McpProtocolError(INVALID_REQUEST, 'The method must be a string.', id);
  if (m.params !== undefined && (m.params === null || typeof m.params !== 'object' || Array.isArray(m.params))) {
    throw new McpProtocolError(INVALID_REQUEST, 'The params must be an object.', id);
  }
  return m as unknown as JsonRpcMessage;
}

/** The revision the message claims in its `_meta` envelope (2026-07-28), if any. */
export function envelopeRevision(message: JsonRpcMessage): string | undefined {
  const meta = message.params?._meta;
  const v = meta && typeof meta === 'object' ? (meta as Record<string, unknown>)[PROTOCOL_VERSION_META_KEY] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/**
 * SEP-2243: on the stateless revision every request carries `MCP-Protocol-Version` and
 * `Mcp-Method` (and `Mcp-Name` where the table says), and they must equal the body. On older
 * revisions the headers are optional, but when present they must still agree.
 */
export function checkStandardHeaders(headers: Record<string, string | string[] | undefined>, message: JsonRpcMessage): void {
  const id = message.id ?? null;
  const versionHeader = first(headers['mcp-protocol-version']);
  const methodHeader = first(headers['mcp-method']);
  const nameHeader = first(headers['mcp-name']);
  const claimed = envelopeRevision(message);
  const modern = isModernRevision(versionHeader) || isModernRevision(claimed);
  const isRequest = message.method !== undefined && message.id !== undefined;

  if (claimed !== undefined && versionHeader !== undefined && claimed !== versionHeader) {
    throw new McpProtocolError(HEADER_MISMATCH, 'The MCP-Protocol-Version header differs from the protocol version in the request body.', id);
  }
  if (modern && isRequest) {
    if (versionHeader === undefined) throw new McpProtocolError(HEADER_MISMATCH, 'The MCP-Protocol-Version header is required.', id);
    if (methodHeader === undefined) throw new McpProtocolError(HEADER_MISMATCH, 'The Mcp-Method header is required.', id);
  }
  if (methodHeader !== undefined && methodHeader !== message.method) {
    throw new McpProtocolError(HEADER_MISMATCH, 'The Mcp-Method header differs from the method in the request body.', id);
  }
  const field = message.method !== undefined && Object.hasOwn(NAME_SOURCE, message.method) ? NAME_SOURCE[message.method]! : undefined;
  const bodyName = field !== undefined ? message.params?.[field] : undefined;
  if (nameHeader !== undefined) {
    if (field === undefined || typeof bodyName !== 'string' || decodeHeaderValue(nameHeader) !== bodyName) {
      throw new McpProtocolError(HEADER_MISMATCH, 'The Mcp-Name header differs from the name in the request body.', id);
    }
  } else if (modern && isRequest && typeof bodyName === 'string') {
    throw new McpProtocolError(HEADER_MISMATCH, 'The Mcp-Name header is required for this method.', id);
  }
}

/** SEP-2243 value encoding: `=?base64?<b64 of UTF-8>?=` for values unsafe as a plain field. */
export function decodeHeaderValue(value: string): string | undefined {
  const m = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/.exec(value);
  if (!m) return value;
  return Buffer.from(m[1]!, 'base64').toString('utf8');
}

/** The permission a message needs beyond authentication, or null (initialize, tools/list, notifications: authentication only). */
export function mcpPermission(message: JsonRpcMessage): string | null {
  if (message.method === 'tools/call') {
    const name = message.params?.name;
    return typeof name === 'string' && name.length > 0 ? `mcp:tool:${name}` : 'mcp:tool:';
  }
  return null;
}

/**
 * A `tools/list` answer with only the tools `allowed` says yes to. Every response in it that
 * carries a tool list is filtered, whatever its id: an id the hub did not expect (or a batch)
 * must not carry tools past the rule.
 */
export function filterToolsResult(message: unknown, allowed: (tool: string) => boolean): unknown {
  if (Array.isArray(message)) return message.map((m) => filterToolsResult(m, allowed));
  if (!message || typeof message !== 'object') return message;
  const m = message as JsonRpcMessage;
  if (!m.result || typeof m.result !== 'object') return message;
  const result = m.result as { tools?: unknown };
  if (!Array.isArray(result.tools)) return message;
  const tools = result.tools.filter((t) => t && typeof t === 'object' && typeof (t as { name?: unknown }).name === 'string' && allowed((t as { name: string }).name));
  return { ...m, result: { ...result, tools } };
}

/**
 * Rewrites the `data` of each Server-Sent Event (WHATWG HTML §9.2) as it passes, one event at
 * a time: nothing is held back longer than the event being read.
 */
export function sseDataTransform(rewrite: (data: string) => string): Transform {
  let buffer = '';
  // A chunk may end inside a multi-byte character; the decoder carries it over.
  const decoder = new StringDecoder('utf8');
  const flushEvents = (push: (s: string) => void, final: boolean) => {
    for (;;) {
      // A CR at the end of what has arrived may be the first half of a CRLF: wait for the next chunk.
      const m = BLANK_LINE.exec(final || !buffer.endsWith('\r') ? buffer : buffer.slice(0, -1));
      if (!m) break;
      const raw = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      push(rewriteEvent(raw, rewrite) + '\n\n');
    }
    if (final && buffer.length) {
      push(rewriteEvent(buffer, rewrite));
      buffer = '';
    }
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      buffer += decoder.write(chunk);
      flushEvents((s) => this.push(s), false);
      done();
    },
    flush(done: TransformCallback) {
      buffer += decoder.end();
      flushEvents((s) => this.push(s), true);
      done();
    },
  });
}

/**
 * The end of an event: a line ending, then an empty line (WHATWG HTML §9.2.6: CRLF, LF or CR, in
 * any mix; issue 15 found LF CR LF, LF CR and CRLF CR taken for one event with the next). A CRLF
 * is one line ending, never CR then LF.
 */
const BLANK_LINE = /(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r|\n)/;

function rewriteEvent(raw: string, rewrite: (data: string) => string): string {
  const lines = raw.split(/\r\n|\r|\n/);
  const data: string[] = [];
  const other: string[] = [];
  for (const line of lines) {
    // §9.2.6: a line "data" without a colon is a data field with an empty value.
    if (line.startsWith('data:') || line === 'data') data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    else other.push(line);
  }
  if (!data.length) return raw;
  const out = rewrite(data.join('\n'));
  return [...other, ...out.split('\n').map((l) => `data: ${l}`)].join('\n');
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
