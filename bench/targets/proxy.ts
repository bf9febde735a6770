// Baseline: an unauthenticated Fastify reverse proxy (@fastify/reply-from) to the same upstream.
import replyFrom from '@fastify/reply-from';
import Fastify from 'fastify';
import { port, ready } from '../lib/child.ts';

const app = Fastify({ logger: false });
await app.register(replyFrom, { base: process.env.BENCH_UPSTREAM! });
app.all('/*', (req, reply) => reply.from(req.url));
await app.listen({ port: port(), host: '127.0.0.1' });
ready({ url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` });
