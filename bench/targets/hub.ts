/**
 * The hub itself, started the way the tests start it (openHub + buildServer) from MIMIR_* variables,
 * with bench-only set-up over IPC: credentials, signed tokens and memory figures.
 */
import { loadConfig } from '../../src/config/index.ts';
import { openHub } from '../../src/hub.ts';
import { buildServer } from '../../src/http/server.ts';
import { ready } from '../lib/child.ts';
import { stringScanNs } from '../lib/string-scan.ts';

const config = loadConfig(process.env, { dotenv: false });
const hub = await openHub(config);
const app = await buildServer(hub);
await app.listen({ port: config.port, host: '127.0.0.1' });
const gc = (globalThis as { gc?: () => void }).gc;

ready({ url: `http://127.0.0.1:${config.port}`, issuer: config.jwt.issuer, audience: config.jwt.audience }, async (op, args) => {
  switch (op) {
    case 'service-account': {
      const clientId = String(args.clientId);
      const { clientSecret } = await hub.serviceAccounts.create({ clientId, roles: (args.roles as string[] | undefined) ?? ['developer'] });
      return { clientId, clientSecret };
    }
    case 'api-keys': {
      const keys = [];
      for (let i = 0; i < Number(args.count ?? 1); i++) {
        const { key, record } = await hub.apiKeys.create({ name: `bench-${i}`, roles: (args.roles as string[] | undefined) ?? ['viewer'] });
        keys.push({ key, id: record.id });
      }
      return keys;
    }
    case 'session': {
      // A real server-side session, as /auth/callback creates it after an IdP sign-in (same store and key).
      const { sessions } = hub;
      const { cookie } = await sessions.create({ sub: 'bench-user', email: 'bench@example.com', roles: ['developer'], groups: [], provider: 'bench' });
      return { name: config.session.cookie.name, cookie };
    }
    case 'sign': {
      // Distinct user tokens shaped like real ones (sub, client, roles, email, scope).
      const tokens: string[] = [];
      const from = Number(args.from ?? 0);
      for (let i = from; i < from + Number(args.count); i++) {
        const issued = await hub.signer.issue({ sub: `user-${i}`, client_id: 'bench', roles: ['developer'], email: `user-${i}@example.com`, scope: 'nodes:read nodes:write' }, 3600);
        tokens.push(issued.token);
      }
      return tokens;
    }
    case 'string-scan': return stringScanNs();
    case 'stats': {
      gc?.();
      const m = process.memoryUsage();
      return {
        rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external,
        tokenCache: { size: hub.caches.tokens.size, max: hub.caches.tokens.maxEntries },
        apiKeyCache: { size: hub.caches.apiKeys.size, max: hub.caches.apiKeys.maxEntries },
        serviceAccountCache: { size: hub.caches.serviceAccounts.size, max: hub.caches.serviceAccounts.maxEntries },
      };
    }
    default: throw new Error(`unknown op ${op}`);
  }
});
