/**
 * An upstream double for the drain and change-feed tests (node:http, nothing else): `/slow`
 * answers after `slowMs`, `/hang` never answers, `/events` is a server-sent event stream that
 * sends one event and stays open; anything else answers 200 at once. Each route says when a
 * request reached it, so a test can act while that request is in flight.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlowUpstream {
  url: string;
  /** Resolves when the next request of that route arrives. */
  arrived(route: 'slow' | 'hang' | 'events'): Promise<void>;
  close(): Promise<void>;
}

export async function startSlowUpstream(slowMs = 1500): Promise<SlowUpstream> {
  const waiting = new Map<string, Array<() => void>>();
  const arrive = (route: string) => {
    for (const resolve of waiting.get(route)?.splice(0) ?? []) resolve();
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.endsWith('/slow')) {
      arrive('slow');
      const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ slow: 'done' })), slowMs);
      res.once('close', () => clearTimeout(timer));
      return;
    }
    if (path.endsWith('/hang')) {
      arrive('hang');
      return; // never answers
    }
    if (path.endsWith('/events')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: hello\n\n');
      arrive('events');
      return; // stays open
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrived(route) {
      return new Promise<void>((resolve) => {
        const list = waiting.get(route) ?? [];
        list.push(resolve);
        waiting.set(route, list);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
