// Baseline: the limit. Fastify 5 answering a JSON hello, no authentication at all.
import Fastify from 'fastify';
import { port, ready } from '../lib/child.ts';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: port(), host: '127.0.0.1' });
ready({ url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}` });
