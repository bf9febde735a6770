/**
 * Baseline: oidc-provider (certified OpenID provider) issuing JWT access tokens by client_credentials
 * (RFC 8707 resource indicators choose the JWT format, signed with BENCH_IDP_ALG: RS256 by default,
 * ES256 or EdDSA) and answering RFC 7662 introspection. Also serves as the upstream IdP for the hub's
 * "IdP JWT" line.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
// @ts-expect-error -- oidc-provider ships no type declarations
import Provider from 'oidc-provider';
import { port, ready } from '../lib/child.ts';

const listenPort = port();
const issuer = `http://127.0.0.1:${listenPort}`;
const audience = process.env.BENCH_IDP_AUDIENCE ?? 'urn:mimir:bench';
const opaque = 'urn:bench:opaque';
const clientId = 'bench-client';
const clientSecret = 'bench-client-secret-0123456789abcdef0123456789';
const alg = process.env.BENCH_IDP_ALG ?? 'RS256';
if (!['RS256', 'ES256', 'EdDSA'].includes(alg)) throw new Error(`BENCH_IDP_ALG must be RS256, ES256 or EdDSA, not ${alg}`);
// An RS256 key always (ID tokens' default algorithm), plus one for BENCH_IDP_ALG.
const keys = [];
for (const a of new Set(['RS256', alg])) {
  const { privateKey } = await generateKeyPair(a, { extractable: true, ...(a === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  keys.push({ ...(await exportJWK(privateKey)), kid: `bench-${a.toLowerCase()}`, alg: a, use: 'sig' });
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys },
  scopes: ['api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx: unknown, resource: string) => ({
        scope: 'api', audience: resource, accessTokenTTL: 3600,
        accessTokenFormat: resource === opaque ? 'opaque' : 'jwt',
        jwt: { sign: { alg } },
      }),
    },
  },
} as never);
provider.on('server_error', () => undefined);

const server = createServer(provider.callback());
server.keepAliveTimeout = 65_000;
await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, issuer, audience, opaque, clientId, clientSecret, alg });
