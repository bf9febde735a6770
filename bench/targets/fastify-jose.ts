// Baseline: Fastify + jose.jwtVerify on every request, no cache, same key, issuer and audience as the hub.
import Fastify from 'fastify';
import { importJWK, jwtVerify, type JWK } from 'jose';
import { port, ready } from '../lib/child.ts';

const jwk = JSON.parse(process.env.BENCH_JWK!) as JWK;
const key = await importJWK(jwk, jwk.alg);
const options = { algorithms: [jwk.alg!], issuer: process.env.BENCH_ISSUER!, audience: process.env.BENCH_AUDIENCE! };
const app = Fastify({ logger: false });
app.get('/', async (req, reply) => {
  const h = req.headers.authorization ?? '';
  try {
    const { payload } = await jwtVerify(h.slice(7), key, options);
    return payload;
  } catch {
    return reply.code(401).send({ error: 'invalid_token' });
  }
});
await app.listen({ port: port(), host: '127.0.0.1' });
ready({ url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` });
