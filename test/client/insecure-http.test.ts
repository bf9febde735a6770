/**
 * The downstream client never sends an API key or a service account's secret over plain http to
 * a host that is not loopback, unless told the network is private (MIMIR_ALLOW_INSECURE_HTTP).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMimirClient, MimirClientError } from '../../src/client/index.ts';

describe('the client refuses to send secrets in the clear', () => {
  it('http to a remote host is refused for api-key and service-account modes; https and loopback are fine', () => {
    for (const options of [{ apiKey: 'mimir_x' }, { serviceAccountId: 'svc', serviceAccountSecret: 's' }]) {
      assert.throws(() => createMimirClient({ url: 'http://mimir.example.com', fromEnv: false, ...options }), MimirClientError);
      assert.doesNotThrow(() => createMimirClient({ url: 'https://mimir.example.com', fromEnv: false, ...options }));
      assert.doesNotThrow(() => createMimirClient({ url: 'http://127.0.0.1:9042', fromEnv: false, ...options }));
      assert.doesNotThrow(() => createMimirClient({ url: 'http://localhost:9042', fromEnv: false, ...options }));
      assert.doesNotThrow(() => createMimirClient({ url: 'http://mimir-auth:9042', fromEnv: false, allowInsecureHttp: true, ...options }));
    }
  });
});
