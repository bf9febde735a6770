import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A loopback port free now, for a server a test starts next (its URL must name the port first).
 * Drawn at random below the kernel's ephemeral range (ip_local_port_range), where no listen(0) or
 * outgoing connection of another test takes it meanwhile: a port the kernel had just handed out
 * was, now and then, handed out again before the test listened on it (EADDRINUSE under load).
 * The range starts above 10080, the highest of the Fetch standard's "bad ports": fetch() refuses
 * to connect to one ("bad port"), so a server started there could not be reached by the tests.
 */
export async function freePort(): Promise<number> {
  let low = 32768;
  try { low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low; } catch { /* not Linux */ }
  const bind = (port: number) => new Promise<number>((resolve, reject) => {
    const srv = createServer().unref();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
  const from = 10_081;
  for (let i = 0; i < 50 && low - from > 1000; i++) {
    try { return await bind(from + Math.floor(Math.random() * (low - from))); } catch { /* taken: another */ }
  }
  return bind(0);
}

