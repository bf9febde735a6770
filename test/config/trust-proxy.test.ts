/**
 * MIMIR_TRUST_PROXY is checked as the configuration is read, by the library Fastify compiles it
 * with (@fastify/proxy-addr): what it accepts starts a server, what it refuses is a configuration
 * error naming the variable, never a crash at start-up (`mimir-auth: invalid IP address: yes`,
 * exit 1, before 7aaa189; `0.0.0.0/0` or a zone id with a dot still crashed after it, found by a
 * review of that change). Nor does it take an entry proxy-addr would read otherwise than its
 * writer meant (`010.0.0.1` as octal, 8.0.0.1; `1` as 0.0.0.1), or every IPv4 client under an
 * IPv4-mapped range (`::ffff:0.0.0.0/96`): found by a review of 7a857f9, accepted before.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

const load = (value: string) => loadConfig({ MIMIR_TRUST_PROXY: value, MIMIR_DATA_DIR: '/tmp/mimir-trust-proxy-test' }, { dotenv: false });

describe('MIMIR_TRUST_PROXY', () => {
  it('true, false and lists of IPs, CIDR ranges, netmasks and range names are taken, and Fastify compiles each', async () => {
    const cases: Array<[string, boolean | string[]]> = [
      ['true', true], ['FALSE', false], ['', false],
      ['10.0.0.0/8, 127.0.0.1', ['10.0.0.0/8', '127.0.0.1']],
      ['loopback,linklocal,uniquelocal', ['loopback', 'linklocal', 'uniquelocal']],
      ['10.0.0.0/255.0.0.0', ['10.0.0.0/255.0.0.0']],
      ['fd00::/8,::1', ['fd00::/8', '::1']],
      ['::ffff:10.0.0.1/104', ['::ffff:10.0.0.1/104']],
    ];
    for (const [value, expected] of cases) {
      const trustProxy = load(value).trustProxy;
      assert.deepEqual(trustProxy, expected, value);
      const app = Fastify({ trustProxy });
      await app.close();
    }
  });

  it('anything else is a configuration error naming the variable and the entry; /0 is refused for true', () => {
    const everything = new Set(['0.0.0.0/0', '::/0', '1.2.3.4/00', '::ffff:0.0.0.0/96', '::ffff:0.0.0.0/80', '10.0.0.0/0.0.0.0']);
    for (const value of ['yes', '10.0.0.0/33', ...everything, 'fe80::1%eth0.100', '10.0.0.1,nope', '010.0.0.1', '0x0a000001', '1']) {
      assert.throws(() => load(value), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.problems.length, 1);
        assert.match(e.problems[0]!, /^MIMIR_TRUST_PROXY: "[^"]+" is not a proxy address/);
        if (everything.has(value)) assert.match(e.problems[0]!, /MIMIR_TRUST_PROXY=true/);
        return true;
      }, value);
    }
  });
});
