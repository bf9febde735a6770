/**
 * A TCP proxy between a hub and its store, for injecting network faults for real (issue 18):
 *
 * - `pass()`: bytes flow both ways (again).
 * - `cut()`: every connection is destroyed and new ones are refused (the listener closes), as
 *   when the store's host goes down: clients see resets and refused connections at once.
 * - `blackhole()`: connections stay open and new ones are accepted, but nothing is forwarded
 *   either way, and nobody is told — a silent partition. The bytes are held, not dropped (TCP
 *   would retransmit them), so `pass()` afterwards delivers them in order, as a healed network does.
 *
 * @example
 * const proxy = await startTcpProxy(6379);
 * const url = `redis://127.0.0.1:${proxy.port}`;
 * proxy.blackhole(); ... proxy.pass();
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'cut' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** Connections open now (pairs). */
  readonly connections: number;
  pass(): Promise<void>;
  cut(): Promise<void>;
  blackhole(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  const pairs = new Set<Pair>();
  let server: Server | undefined;
  let port = 0;

  const hold = (p: Pair) => {
    // Neither side is read: what each sends waits in the kernel's buffers, as in a partition.
    p.client.unpipe(p.upstream);
    p.upstream.unpipe(p.client);
    p.client.pause();
    p.upstream.pause();
  };
  const flow = (p: Pair) => {
    p.client.pipe(p.upstream);
    p.upstream.pipe(p.client);
  };

  const accept = (client: Socket) => {
    if (mode === 'cut') { client.destroy(); return; }
    const upstream = createConnection({ port: targetPort, host: targetHost });
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (mode === 'blackhole') hold(pair);
    else flow(pair);
  };

  const listen = () => new Promise<void>((resolve, reject) => {
    server = createServer(accept);
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server!.address();
      port = typeof address === 'object' && address ? address.port : 0;
      resolve();
    });
  });
  const stopListening = () => new Promise<void>((resolve) => {
    const s = server;
    server = undefined;
    if (!s) return resolve();
    s.close(() => resolve());
  });

  await listen();
  return {
    get port() { return port; },
    get mode() { return mode; },
    get connections() { return pairs.size; },
    async pass() {
      const was = mode;
      mode = 'pass';
      if (was === 'blackhole') for (const p of pairs) flow(p);
      // Listening again on the same port: the clients reconnect to the address they know.
      if (!server) await listen();
    },
    async cut() {
      mode = 'cut';
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await stopListening();
    },
    blackhole() {
      mode = 'blackhole';
      for (const p of pairs) hold(p);
    },
    async close() {
      mode = 'cut';
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await stopListening();
    },
  };
}

/**
 * A proxy to the server of `url` (a redis:// or postgres:// URL; `defaultPort` when it names none)
 * and `url` rewritten to go through it.
 */
export async function throughProxy(url: string, defaultPort: number): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(url);
  const proxy = await startTcpProxy(Number(target.port || defaultPort), target.hostname);
  target.port = String(proxy.port);
  return { proxy, url: target.toString() };
}
