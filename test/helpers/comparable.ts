/**
 * One exchange through node:http (so Host can be set), its answer in a form two servers' answers
 * can be compared by: status, body, and the headers less those that differ per response by
 * design (Date, X-Request-Id).
 */
import { request } from 'node:http';

export interface Answer { status: number; headers: Record<string, string>; body: string }

export function comparable(url: string, headers: Record<string, string>, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { host: 'mimir.example.test', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (k !== 'date' && k !== 'x-request-id' && v !== undefined) out[k] = String(v);
        resolve({ status: res.statusCode!, headers: out, body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}
