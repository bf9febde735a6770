/**
 * One HTTP/1.1 exchange over a raw socket, for requests fetch() would not send as written:
 * fragments in the target, repeated headers, absolute-form targets.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function rawRequest(url: string, lines: { method: string; target: string; headers?: Array<[string, string]>; body?: string }): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const head = [`${lines.method} ${lines.target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close'];
  for (const [k, v] of lines.headers ?? []) head.push(`${k}: ${v}`);
  if (lines.body !== undefined) head.push(`Content-Length: ${Buffer.byteLength(lines.body)}`);
  const text = `${head.join('\r\n')}\r\n\r\n${lines.body ?? ''}`;
  return new Promise((resolve, reject) => {
    // Written, not ended: a half-closed client looks gone to the server; `Connection: close` ends the exchange.
    const socket = connect(Number(port), hostname, () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => { socket.destroy(); reject(new Error(`no answer to ${lines.method} ${lines.target}`)); });
    socket.on('close', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const end = all.indexOf('\r\n\r\n');
      const [status, ...rest] = all.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of rest) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(status?.split(' ')[1]), headers, body: all.slice(end + 4) });
    });
  });
}
