/**
 * Preloaded into the real Mimir (`node --import …/loopback.ts build/http-server.js`) by run.ts.
 * Mimir calls `app.listen(port)` with no address, which listens on every interface (:: / 0.0.0.0);
 * this makes a listen without an address use MIMIR_REAL_BIND (default 127.0.0.1) instead, so the
 * unauthenticated Mimir is reachable from this machine only. Mimir's code is not changed.
 */
import { Server } from 'node:net';

const host = process.env.MIMIR_REAL_BIND || '127.0.0.1';
const listen = Server.prototype.listen;

function withHost(args: unknown[]): unknown[] {
  const [first, second] = args;
  const isPort = typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first));
  if (isPort && typeof second !== 'string') return [first, host, ...args.slice(1)];
  if (first && typeof first === 'object' && !('host' in first) && !('path' in first) && !('fd' in first)) {
    return [{ ...first, host }, ...args.slice(1)];
  }
  return args;
}

Server.prototype.listen = function (this: Server, ...args: unknown[]) {
  return (listen as (...a: unknown[]) => Server).apply(this, withHost(args));
} as typeof Server.prototype.listen;
