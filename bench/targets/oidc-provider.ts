/**
 * Baseline: oidc-provider (certified OpenID provider) issuing JWT access tokens by client_credentials
 * (RFC 8707 resource indicators choose the JWT format, RS256) and answering RFC 7662 introspection.
 * Also serves as the upstream IdP for the hub's "IdP JWT" line.
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
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId, client_secret: clientSecret, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
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
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
} as never);
provider.on('server_error', () => undefined);

const server = createServer(provider.callback());
server.keepAliveTimeout = 65_000;
await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
ready({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, issuer, audience, opaque, clientId, clientSecret });
