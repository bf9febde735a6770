// Baseline: what a Mimir user has today, Express 5 + express-jwt (jsonwebtoken) on the same token.
import { createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { expressjwt } from 'express-jwt';
import { port, ready } from '../lib/child.ts';

const jwk = JSON.parse(process.env.BENCH_JWK!) as { alg: string };
const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
const app = express();
app.get('/', expressjwt({ secret: pem, algorithms: [jwk.alg as 'RS256'], issuer: process.env.BENCH_ISSUER!, audience: process.env.BENCH_AUDIENCE! }), (req, res) => {
  res.json((req as unknown as { auth: unknown }).auth);
});
app.use((err: { status?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  res.status(err.status ?? 500).json({ error: 'invalid_token' });
});
const server = app.listen(port(), '127.0.0.1', () => {
  ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
