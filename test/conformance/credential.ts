/**
 * Preloaded (`node --import`) into the conformance CLI when it tests the hub. The suite's MCP
 * client has no option for request headers (0.1.16: `new StreamableHTTPClientTransport(new
 * URL(url))`, raw `fetch` and `undici.request`), and the hub refuses /mcp without a credential.
 * So every request the CLI sends to the hub's origin carries the API key in
 * MIMIR_CONFORMANCE_API_KEY — set on the connection's dispatcher (undici's global one, which
 * Node's `fetch` and the suite's `undici.request` both use), keyed on the origin connected to,
 * never on the Host header a scenario writes (dns-rebinding-protection sends a forged one).
 */
import { Agent, setGlobalDispatcher, type Dispatcher } from 'undici';

const origin = process.env.MIMIR_CONFORMANCE_ORIGIN;
const key = process.env.MIMIR_CONFORMANCE_API_KEY;
if (!origin || !key) throw new Error('MIMIR_CONFORMANCE_ORIGIN and MIMIR_CONFORMANCE_API_KEY must be set for the conformance credential preload.');

/** The request headers as the flat list undici accepts, with x-api-key added. */
function withKey(headers: Dispatcher.DispatchOptions['headers']): string[] {
  const flat: string[] = [];
  if (Array.isArray(headers)) {
    for (const h of headers as unknown[]) {
      if (Array.isArray(h)) flat.push(String(h[0]), String(h[1]));
      else flat.push(String(h));
    }
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) flat.push(name, v);
    }
  }
  return [...flat, 'x-api-key', key!];
}

setGlobalDispatcher(new Agent().compose((dispatch) => (opts, handler) => {
  const to = opts.origin === undefined ? undefined : new URL(String(opts.origin)).origin;
  return dispatch(to === origin ? { ...opts, headers: withKey(opts.headers) } : opts, handler);
}));
