/**
 * Issue 21, item 5: the deployment files (Dockerfile, compose.yaml, deploy/kubernetes/,
 * deploy/systemd/) agree with the hub, and what each one runs does start a hub.
 *
 * No container registry or engine is reachable here, so no image is built: each file is parsed
 * (the YAML with the `yaml` package the hub already depends on), every MIMIR_* variable it sets
 * must be one src/config/variables.ts declares and its value must pass that variable's parser,
 * ports and health paths must be the hub's. Then the package is packed (`npm pack`) and installed
 * into an empty directory (`npm install <tarball>`), as the Dockerfile does, and each file's
 * command starts a hub there with that file's environment. Only what a container platform or
 * systemd would supply differs, and each substitution is named where it is made: the data volume
 * (a temporary directory), the published port (a free one), the service host names of compose and
 * Kubernetes (the test's PostgreSQL and Redis, and the upstream placeholder started from
 * compose.yaml's own command), and the Secret's values.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parseEnv } from 'node:util';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/index.ts';
import { VARIABLES } from '../../src/config/variables.ts';
import { freePort, newRedisPrefix, REDIS_URL } from '../helpers/hub.ts';
import { freshDatabase, type FreshDatabase } from '../helpers/postgres.ts';
import { childEnv, installInto, manifest, packTarball, root, run, show } from '../helpers/packed.ts';

const started = Date.now();
const progress = (message: string) => console.log(`[deploy] ${((Date.now() - started) / 1000).toFixed(1)} s: ${message}`);
const read = (file: string) => readFileSync(join(root, file), 'utf8');
const declared = new Map<string, (typeof VARIABLES)[number]>(VARIABLES.map((d) => [d.name, d]));
const DEFAULT_PORT = Number(declared.get('MIMIR_AUTH_PORT')!.default);

/** Every MIMIR_* name is declared and every literal value passes that variable's own parser. */
function assertKnownVariables(where: string, env: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('MIMIR_')) continue;
    const doc = declared.get(name);
    assert.ok(doc, `${where} sets ${name}, which src/config/variables.ts does not declare`);
    if (value === undefined) continue; // from a Secret: checked when the hub starts with it
    const parsed = doc.parse.safeParse(value);
    assert.ok(parsed.success, `${where}: ${name}=${value} does not parse: ${parsed.success ? '' : parsed.error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction { keyword: string; args: string }
interface Stage { from: string; name: string | undefined; instructions: Instruction[] }

/** Instructions per stage; continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (!pending && /^\s*(#|$)/.test(line)) continue;
    if (/\\\s*$/.test(line)) { pending += line.replace(/\\\s*$/, ' '); continue; }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile: cannot read ${JSON.stringify(line)}`);
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (keyword === 'FROM') {
      const [from, as, name] = args.split(/\s+/);
      stages.push({ from: from!, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
      continue;
    }
    assert.ok(stages.length, `Dockerfile: ${keyword} before the first FROM`);
    stages.at(-1)!.instructions.push({ keyword, args });
  }
  return stages;
}

/** `ENV A=1 B=2` (the key=value form), later instructions winning. */
function dockerEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of stage.instructions.filter((i) => i.keyword === 'ENV')) {
    for (const pair of args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g) ?? []) {
      const at = pair.indexOf('=');
      env[pair.slice(0, at)] = pair.slice(at + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

/** The exec (JSON) form of CMD, or of HEALTHCHECK's CMD; the shell form is refused (SIGTERM would reach a shell). */
function execForm(where: string, args: string): string[] {
  const json = args.replace(/^(--[a-z-]+=\S+\s+)*CMD\s+/, '');
  let parsed: unknown;
  try { parsed = JSON.parse(json); } catch { assert.fail(`${where} is not in exec form (a JSON array): ${args}`); }
  assert.ok(Array.isArray(parsed) && parsed.every((p) => typeof p === 'string'), `${where}: ${args}`);
  return parsed as string[];
}

const stages = parseDockerfile(read('Dockerfile'));
const runtime = stages.at(-1)!;
const only = (keyword: string) => {
  const found = runtime.instructions.filter((i) => i.keyword === keyword);
  assert.equal(found.length, 1, `the final stage of the Dockerfile has one ${keyword}`);
  return found[0]!.args;
};
const imageEnv = dockerEnv(runtime);
const imageCmd = execForm('CMD', only('CMD'));
const healthcheck = execForm('HEALTHCHECK', only('HEALTHCHECK'));
const imagePort = Number(imageEnv.MIMIR_AUTH_PORT ?? DEFAULT_PORT);
const imageUser = only('USER');
const imageWorkdir = runtime.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args;

// ---------------------------------------------------------------------------------------------
// compose.yaml

interface ComposeService { image?: string; build?: unknown; ports?: string[]; environment?: Record<string, string>; command?: string[]; stop_grace_period?: string; depends_on?: Record<string, { condition: string }>; healthcheck?: { test: string[] } }
const compose = parseYaml(read('compose.yaml')) as { services: Record<string, ComposeService> };

/** Compose's interpolation: `${NAME}`, `${NAME:-default}`, `${NAME:?error}` (unset and empty alike). */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}/g, (_all, name: string, op: string | undefined, word: string | undefined) => {
    const set = vars[name];
    if (set) return set;
    if (op === '-') return word ?? '';
    assert.notEqual(op, '?', `compose.yaml needs ${name}: ${word}`);
    return '';
  });
}

const seconds = (duration: string) => {
  const m = /^(\d+)(s|m)?$/.exec(duration);
  assert.ok(m, `a duration: ${duration}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
};

// ---------------------------------------------------------------------------------------------
// deploy/kubernetes

const K8S = join(root, 'deploy', 'kubernetes');
interface K8sObject { apiVersion: string; kind: string; metadata: { name: string }; spec: Record<string, unknown> }
interface EnvVar { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
interface Probe { httpGet: { path: string; port: string | number } }
interface Container {
  name: string; image: string; command?: string[]; args?: string[]; env: EnvVar[];
  ports: { name: string; containerPort: number }[]; livenessProbe: Probe; readinessProbe: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec { terminationGracePeriodSeconds: number; containers: Container[]; securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }; volumes?: { name: string }[] }

function kubernetesObjects(): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const file of readdirSync(K8S).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(K8S, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file} parses`);
      objects.push(doc.toJS() as K8sObject);
    }
  }
  return objects;
}
const k8s = kubernetesObjects();
const ofKind = <T = K8sObject>(kind: string) => {
  const found = k8s.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `deploy/kubernetes holds one ${kind}`);
  return found[0] as T;
};

// ---------------------------------------------------------------------------------------------
// deploy/systemd

/** Sections of a unit file; a repeated key keeps every value in order. */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current: Record<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*([#;]|$)/.test(line)) continue;
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) { current = sections[header[1]!] = {}; continue; }
    const at = line.indexOf('=');
    assert.ok(current && at > 0, `unit: cannot read ${JSON.stringify(line)}`);
    (current[line.slice(0, at).trim()] ??= []).push(line.slice(at + 1).trim());
  }
  return sections;
}
const unit = parseUnit(read('deploy/systemd/mimir-auth.service'));
const service = unit.Service!;
const one = (key: string) => {
  assert.equal(service[key]?.length, 1, `the unit sets ${key} once`);
  return service[key]![0]!;
};
/** `Environment=A=1 "B=two words"`, every line. */
const unitEnv: Record<string, string> = Object.fromEntries((service.Environment ?? []).flatMap((line) =>
  (line.match(/"[^"]*"|\S+/g) ?? []).map((word) => {
    const pair = word.replace(/^"(.*)"$/, '$1');
    return [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)] as const;
  })));
const envFileExample = parseEnv(read('deploy/systemd/mimir-auth.env.example')) as Record<string, string>;

// ---------------------------------------------------------------------------------------------

describe('the deployment files agree with the hub', () => {
  it('Dockerfile: multi-stage, Node of the project\'s major, non-root, data in a volume, HEALTHCHECK on /health, CMD serves', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    const nodeMajor = /^\^?(\d+)\./.exec(manifest.devDependencies.node!)?.[1];
    for (const stage of stages) assert.match(stage.from, new RegExp(`^node:${nodeMajor}[-.]`), `every stage runs Node ${nodeMajor}: ${stage.from}`);
    assert.ok(runtime.instructions.some((i) => i.keyword === 'COPY' && /--from=/.test(i.args)), 'the final stage copies the built package from an earlier one');
    assert.ok(!runtime.instructions.some((i) => i.keyword === 'RUN' && /npm (ci|install|pack)/.test(i.args)), 'the final stage installs nothing itself');
    // The package is what npm ships: packed, then installed from the tarball.
    assert.ok(stages.some((s) => s.instructions.some((i) => i.keyword === 'RUN' && /npm pack/.test(i.args))));
    assert.ok(stages.some((s) => s.instructions.some((i) => i.keyword === 'RUN' && /npm install --omit=dev\b.*\.tgz/.test(i.args))));

    const [user, group] = imageUser.split(':');
    assert.match(user!, /^[1-9]\d*$/, 'USER is a numeric uid other than 0 (Kubernetes runAsNonRoot can check it)');
    assert.match(group ?? '1', /^[1-9]\d*$/);
    assertKnownVariables('Dockerfile', imageEnv);
    assert.equal(imageEnv.MIMIR_AUTH_HOST, '0.0.0.0', 'a container must listen on all its interfaces');
    const volumes = runtime.instructions.filter((i) => i.keyword === 'VOLUME').flatMap((i) => execForm('VOLUME', `CMD ${i.args}`));
    assert.deepEqual(volumes, [imageEnv.MIMIR_DATA_DIR], 'the data directory is the volume');
    assert.equal(imagePort, DEFAULT_PORT, 'the image listens on the hub\'s own port');
    assert.equal(only('EXPOSE'), String(imagePort));
    assert.ok(healthcheck.join(' ').includes('/health'), 'HEALTHCHECK asks /health');
    assert.deepEqual(imageCmd, ['mimir-auth', 'serve']);
    assert.match(only('STOPSIGNAL'), /^SIGTERM$/);
    // `COPY . .` after `npm ci` must not bring the host's node_modules (or a stale dist/, or .env) along.
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.env', 'data']) assert.ok(ignored.includes(entry), `.dockerignore lists ${entry}`);
    assert.ok(!loadConfigProblems({ ...imageEnv }), 'the image\'s own environment is a valid configuration');
  });

  it('compose.yaml: hub, PostgreSQL, Redis and an upstream placeholder, wired on the hub\'s ports and variables', () => {
    const { hub, postgres, redis, mimir } = compose.services;
    assert.ok(hub && postgres && redis && mimir, 'services hub, postgres, redis, mimir');
    assert.equal(hub.build, '.', 'the hub is built from the Dockerfile');
    const env = hub.environment!;
    assertKnownVariables('compose.yaml', Object.fromEntries(Object.entries(env).filter(([, v]) => !v.includes('${'))));
    assert.equal(env.MIMIR_AUTH_PORT, undefined, 'the port is the image\'s');
    assert.deepEqual(hub.ports, [`${imagePort}:${imagePort}`]);

    const vars = { POSTGRES_PASSWORD: 'pw', MIMIR_JWT_SECRET: 'j'.repeat(40), MIMIR_SESSION_SECRET: 's'.repeat(40) };
    const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v, vars)]));
    assertKnownVariables('compose.yaml (interpolated)', resolved);
    const db = new URL(resolved.MIMIR_DATABASE_URL!);
    assert.deepEqual([db.hostname, db.port, db.username, db.password, db.pathname],
      ['postgres', '5432', postgres.environment!.POSTGRES_USER, interpolate(postgres.environment!.POSTGRES_PASSWORD!, vars), `/${postgres.environment!.POSTGRES_DB}`]);
    assert.equal(new URL(resolved.MIMIR_REDIS_URL!).host, 'redis:6379');
    const upstream = new URL(resolved.MIMIR_UPSTREAM_URL!);
    assert.deepEqual([upstream.hostname, upstream.port], ['mimir', mimir.environment!.PORT]);
    assert.equal(mimir.ports, undefined, 'only the hub reaches the upstream');
    assert.deepEqual(hub.depends_on, { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' }, mimir: { condition: 'service_started' } });
    assert.ok(postgres.healthcheck && redis.healthcheck);
    assert.ok(seconds(hub.stop_grace_period!) > Number(resolved.MIMIR_SHUTDOWN_TIMEOUT), 'compose waits longer than the hub drains');
    assert.ok(!loadConfigProblems({ ...imageEnv, ...resolved }), 'the image\'s environment with compose\'s is a valid configuration');
    // Without the secrets, compose itself refuses to start (`:?`), naming each.
    assert.throws(() => interpolate(env.MIMIR_JWT_SECRET!, {}), /MIMIR_JWT_SECRET/);
  });

  it('Kubernetes: several replicas on PostgreSQL/Redis, probes /health and /ready, Secret references, a PodDisruptionBudget, a grace period above the drain', () => {
    const kustomization = parseYaml(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    assert.deepEqual([...kustomization.resources].sort(), readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort());
    const deployment = ofKind<K8sObject & { spec: { replicas: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } }>('Deployment');
    const svc = ofKind<K8sObject & { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } }>('Service');
    const pdb = ofKind<K8sObject & { spec: { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget');
    const pod = deployment.spec.template;
    const labels = pod.metadata.labels;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    assert.ok(deployment.spec.replicas >= 2, 'several replicas');
    assert.ok(selects(deployment.spec.selector.matchLabels) && selects(svc.spec.selector) && selects(pdb.spec.selector.matchLabels));
    assert.ok(pdb.spec.maxUnavailable !== undefined ? pdb.spec.maxUnavailable < deployment.spec.replicas : pdb.spec.minAvailable! >= 1);

    assert.equal(pod.spec.containers.length, 1);
    const hub = pod.spec.containers[0]!;
    assert.equal(hub.command, undefined, 'the image\'s CMD runs');
    assert.equal(hub.args, undefined, 'the image\'s CMD runs');
    const env = Object.fromEntries(hub.env.map((e) => [e.name, e.value]));
    assertKnownVariables('deployment.yaml', env);
    assert.match(env.MIMIR_TOKEN_STORAGE!, /^(postgres|redis)$/, 'shared storage: several replicas need it');
    const secretRefs = hub.env.filter((e) => e.valueFrom).map((e) => [e.name, e.valueFrom!.secretKeyRef!.name]);
    for (const secret of ['MIMIR_JWT_SECRET', 'MIMIR_SESSION_SECRET', 'MIMIR_DATABASE_URL']) {
      assert.ok(secretRefs.some(([name]) => name === secret), `${secret} comes from a Secret`);
      assert.equal(env[secret], undefined, `${secret} has no literal value`);
    }
    assert.equal(new Set(secretRefs.map(([, s]) => s)).size, 1, 'one Secret');

    assert.deepEqual(hub.ports.map((p) => p.containerPort), [imagePort]);
    const portNamed = (port: string | number) => typeof port === 'number' ? port : hub.ports.find((p) => p.name === port)?.containerPort;
    assert.deepEqual([hub.livenessProbe.httpGet.path, portNamed(hub.livenessProbe.httpGet.port)], ['/health', imagePort]);
    assert.deepEqual([hub.readinessProbe.httpGet.path, portNamed(hub.readinessProbe.httpGet.port)], ['/ready', imagePort]);
    assert.equal(portNamed(svc.spec.ports[0]!.targetPort), imagePort);

    const shutdown = Number(env.MIMIR_SHUTDOWN_TIMEOUT ?? declared.get('MIMIR_SHUTDOWN_TIMEOUT')!.default);
    const preStop = hub.lifecycle?.preStop;
    const pause = preStop?.sleep?.seconds ?? (preStop?.exec?.command[0] === 'sleep' ? Number(preStop.exec.command[1]) : 0);
    assert.ok(pod.spec.terminationGracePeriodSeconds > shutdown + pause,
      `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} > MIMIR_SHUTDOWN_TIMEOUT ${shutdown} + preStop ${pause}`);
    assert.equal(pod.spec.securityContext?.runAsNonRoot, true);
    assert.equal(String(pod.spec.securityContext?.runAsUser), imageUser.split(':')[0], 'the image\'s user');
    assert.ok(hub.volumeMounts?.some((m) => m.mountPath === imageEnv.MIMIR_DATA_DIR), 'the data directory is a volume (the root file system is read-only)');

    const withSecrets = { ...imageEnv, ...env, MIMIR_DATABASE_URL: 'postgres://u:p@db:5432/mimir', MIMIR_REDIS_URL: 'redis://redis:6379', MIMIR_JWT_SECRET: 'j'.repeat(40), MIMIR_SESSION_SECRET: 's'.repeat(40) };
    assert.ok(!loadConfigProblems(withSecrets), 'the image\'s environment with the Deployment\'s is a valid configuration');
  });

  it('systemd: hardened, a dedicated user, StateDirectory as MIMIR_DATA_DIR, an EnvironmentFile, a stop timeout above the drain', () => {
    for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', RestrictSUIDSGID: 'yes', UMask: '0077' })) {
      assert.equal(one(key), value, `${key}=${value}`);
    }
    assert.equal(one('CapabilityBoundingSet'), '', 'no capabilities');
    assert.equal(service.MemoryDenyWriteExecute, undefined, 'V8\'s JIT needs writable executable memory');
    const user = one('User');
    assert.notEqual(user, 'root');
    assert.equal(one('Group'), user);
    assert.match(read('deploy/systemd/mimir-auth.sysusers'), new RegExp(`^u ${user} `, 'm'), 'mimir-auth.sysusers creates the user');
    assert.equal(unitEnv.MIMIR_DATA_DIR, `/var/lib/${one('StateDirectory')}`, 'the data directory is the state directory (the only writable place under ProtectSystem=strict)');
    assert.equal(one('WorkingDirectory'), unitEnv.MIMIR_DATA_DIR);
    assert.match(one('EnvironmentFile'), /^\/etc\/mimir-auth\/mimir-auth\.env$/);
    assertKnownVariables('mimir-auth.service', unitEnv);
    assertKnownVariables('mimir-auth.env.example', envFileExample);
    assert.ok(seconds(one('TimeoutStopSec')) > Number(unitEnv.MIMIR_SHUTDOWN_TIMEOUT));
    assert.equal(one('KillSignal'), 'SIGTERM');
    assert.match(one('ExecStart'), /^\/opt\/mimir-auth\/node_modules\/\.bin\/mimir-auth serve$/);
    assert.equal(one('RestartPreventExitStatus'), '78', 'a configuration error (exit 78) is not retried');
    assert.ok(!loadConfigProblems({ ...unitEnv, ...envFileExample }), 'the unit\'s environment with the example file is a valid configuration');
  });

  it('docs/production.md: real variables, every secret one named, links that resolve, linked from the README', () => {
    const doc = read('docs/production.md');
    for (const name of new Set(doc.match(/\bMIMIR_[A-Z0-9_]+/g) ?? [])) assert.ok(declared.has(name), `docs/production.md names ${name}, which src/config/variables.ts does not declare`);
    for (const d of VARIABLES.filter((v) => 'secret' in v && v.secret)) assert.ok(doc.includes(`\`${d.name}\``), `docs/production.md names the secret ${d.name}`);
    for (const [, target] of doc.matchAll(/\]\(((?!https?:)[^)\s]+)\)/g)) {
      const [file, fragment] = target!.split('#');
      const path = join(root, 'docs', file!);
      assert.ok(existsSync(path), `docs/production.md links ${target}, which does not exist`);
      if (fragment) {
        const slugs = [...readFileSync(path, 'utf8').matchAll(/^#+ (.+)$/gm)].map(([, h]) => h!.toLowerCase().replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-'));
        assert.ok(slugs.includes(fragment), `docs/production.md links ${target}: no such heading (${slugs.join(', ')})`);
      }
    }
    assert.match(read('README.md'), /\]\(docs\/production\.md\)/, 'the README links docs/production.md');
    // The alert rules parse, and each has a name and an expression.
    const blocks = [...doc.matchAll(/\n```yaml\n([\s\S]*?)\n```\n/g)].map(([, block]) => parseYaml(block!) as { groups: { rules: { alert: string; expr: string }[] }[] });
    const rules = blocks.flatMap((b) => b.groups.flatMap((g) => g.rules));
    assert.ok(rules.length >= 3, 'docs/production.md holds alert rules');
    for (const rule of rules) assert.ok(rule.alert && /mimir_auth_/.test(rule.expr), JSON.stringify(rule));
  });

  it('systemd: systemd-sysusers creates the unit\'s user from mimir-auth.sysusers: a system user, home the state directory, no login', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'mimir-sysusers-'));
    try {
      mkdirSync(join(scratch, 'etc', 'sysusers.d'), { recursive: true });
      copyFileSync(join(root, 'deploy', 'systemd', 'mimir-auth.sysusers'), join(scratch, 'etc', 'sysusers.d', 'mimir-auth.conf'));
      const created = spawnSync('systemd-sysusers', [`--root=${scratch}`], { encoding: 'utf8' });
      assert.ifError(created.error); // systemd-sysusers (Debian package systemd) must be installed
      assert.equal(created.status, 0, created.stderr);
      const entry = readFileSync(join(scratch, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${one('User')}:`));
      assert.ok(entry, created.stderr);
      const [, , uid, , , home, shell] = entry.split(':');
      assert.ok(Number(uid) > 0 && Number(uid) < 1000, `a system uid: ${uid}`);
      assert.equal(home, unitEnv.MIMIR_DATA_DIR);
      assert.match(shell!, /nologin$/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('systemd: systemd-analyze rates the unit\'s exposure OK (at most 2.0 of 10)', () => {
    const analyzed = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', join(root, 'deploy', 'systemd', 'mimir-auth.service')], { encoding: 'utf8' });
    assert.ifError(analyzed.error); // systemd-analyze (Debian package systemd) must be installed
    const level = /Overall exposure level for mimir-auth\.service: ([\d.]+)/.exec(analyzed.stdout);
    assert.ok(level, analyzed.stdout + analyzed.stderr);
    assert.ok(Number(level[1]) <= 2, `exposure ${level[1]}`);
  });
});

/** The configuration's problems, or undefined when it loads. */
function loadConfigProblems(env: Record<string, string | undefined>): string | undefined {
  try {
    loadConfig(env, { dotenv: false });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

// ---------------------------------------------------------------------------------------------
// Running what each file runs, against the packed package

interface Served { url: string; output: () => string; stop(): Promise<number | null> }

/**
 * Spawns `command` (found on env.PATH) and waits until it answers /health and has printed `started`.
 * A hub answers /health as soon as it listens, but takes over SIGTERM (to drain) only after it
 * printed its start banner; a SIGTERM between the two ends it at once, without a drain.
 */
async function serve(command: string[], env: NodeJS.ProcessEnv, cwd: string, port: number, started = /^Mimir Auth Hub listening on /m): Promise<Served> {
  const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    assert.equal(child.exitCode, null, `${command.join(' ')} exited:\n${out}`);
    try {
      if ((await fetch(`${url}/health`)).ok && started.test(out)) break;
    } catch { /* not yet */ }
    assert.ok(Date.now() < deadline, `${command.join(' ')} did not answer /health and print ${started} within 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      if (code === null) assert.fail(`ended by ${child.signalCode}, not by its own drain:\n${out}`);
      if (code === 'hung') { child.kill('SIGKILL'); assert.fail(`did not stop on SIGTERM:\n${out}`); }
      return code;
    },
  };
}

async function assertHealthyAndReady(hub: Served, storage: string): Promise<void> {
  const health = await fetch(`${hub.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
  const ready = await fetch(`${hub.url}/ready`);
  const body = await ready.text();
  assert.equal(ready.status, 200, `${body}\n${hub.output()}`);
  assert.deepEqual(JSON.parse(body), { status: 'ready', storage });
}

/** Replaces the image's `/app` (WORKDIR, PATH) with where the test installed the package. */
function imageEnvAt(app: string): Record<string, string> {
  const env = { ...imageEnv };
  assert.equal(imageWorkdir, '/app');
  assert.match(env.PATH!, /^\/app\/node_modules\/\.bin:\$PATH$/);
  env.PATH = `${join(app, 'node_modules', '.bin')}${delimiter}${childEnv().PATH!}`;
  return env;
}

describe('what each file runs starts the hub from the packed package', () => {
  let work: string;
  let app: string;
  const databases: FreshDatabase[] = [];
  const running: Served[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'mimir-deploy-'));
    app = join(work, 'app');
    progress('npm pack…');
    const tarball = await packTarball(work);
    progress(`npm install ./${tarball} into an empty app (as the Dockerfile's install stage)…`);
    await installInto(app, join(work, tarball));
    progress('installed');
  }, { timeout: 15 * 60_000 });

  after(async () => {
    for (const served of running) await served.stop().catch(() => undefined);
    for (const db of databases) await db.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** compose.yaml's placeholder, from its own command, on a free port. */
  async function placeholder(): Promise<{ url: string; stop(): Promise<unknown> }> {
    const { command, environment } = compose.services.mimir!;
    assert.equal(command![0], 'node');
    const port = await freePort();
    const served = await serve([process.execPath, ...command!.slice(1)], childEnv({ ...environment, PORT: String(port) }), work, port, /^/);
    running.push(served);
    return { url: served.url, stop: () => served.stop() };
  }

  it('the Dockerfile\'s CMD and ENV, the data directory as the volume: /health and /ready answer, the HEALTHCHECK passes, then fails once stopped', async () => {
    const volume = mkdtempSync(join(work, 'volume-'));
    const port = await freePort(); // docker run -p <port>:9042
    const env = childEnv({ ...imageEnvAt(app), MIMIR_DATA_DIR: volume, MIMIR_AUTH_PORT: String(port), HOME: work });
    const hub = await serve(imageCmd, env, app, port);
    running.push(hub);
    await assertHealthyAndReady(hub, 'sqlite');
    assert.ok(existsSync(join(volume, 'mimir-auth.db')), 'the database is in the volume');
    assert.match(hub.output(), new RegExp(`listening on http://0\\.0\\.0\\.0:${port}`));
    // The metrics docs/production.md alerts on are ones the hub serves (a scraper on the same host needs no credential).
    const exposition = await (await fetch(`${hub.url}/metrics/auth`)).text();
    const served = new Set([...exposition.matchAll(/^# TYPE (mimir_auth_\w+)/gm)].map(([, name]) => name));
    const named = new Set([...read('docs/production.md').matchAll(/\b(mimir_auth_\w+?)(?:_bucket|_sum|_count)?\b/g)].map(([, name]) => name!));
    assert.ok(named.size >= 5, `docs/production.md names the hub's metrics: ${[...named].join(', ')}`);
    assert.deepEqual([...named].filter((name) => !served.has(name)), [], `served: ${[...served].join(', ')}`);

    const check = await run(healthcheck[0] === 'node' ? process.execPath : healthcheck[0]!, healthcheck.slice(1), app, env);
    assert.equal(check.code, 0, show(check));
    assert.equal(await hub.stop(), 0, hub.output());
    const after = await run(process.execPath, healthcheck.slice(1), app, env);
    assert.equal(after.code, 1, `the HEALTHCHECK fails when nothing answers: ${show(after)}`);
  });

  it('compose.yaml\'s hub environment on PostgreSQL and Redis: ready, and an API key created with the CLI reaches the placeholder through the proxy', async () => {
    const db = await freshDatabase();
    databases.push(db);
    const upstream = await placeholder();
    const port = await freePort();
    const vars = { POSTGRES_PASSWORD: randomBytes(12).toString('hex'), MIMIR_JWT_SECRET: randomBytes(48).toString('base64'), MIMIR_SESSION_SECRET: randomBytes(48).toString('base64') };
    const composed = Object.fromEntries(Object.entries(compose.services.hub!.environment!).map(([k, v]) => [k, interpolate(v, vars)]));
    const env = childEnv({
      ...imageEnvAt(app), ...composed, HOME: work,
      MIMIR_DATA_DIR: mkdtempSync(join(work, 'compose-data-')), MIMIR_AUTH_PORT: String(port),
      // The service names, as this machine reaches them:
      MIMIR_DATABASE_URL: db.url, // postgres:5432 (a database of this test's own)
      MIMIR_REDIS_URL: REDIS_URL, MIMIR_REDIS_KEY_PREFIX: newRedisPrefix(), // redis:6379 (shared: keys of this test's own)
      MIMIR_UPSTREAM_URL: upstream.url, // mimir:3000
    });
    const created = await run('mimir-auth', ['keys', 'create', '--name', 'compose', '--roles', 'admin', '--json'], app, env);
    assert.equal(created.code, 0, show(created));
    const { key } = JSON.parse(created.stdout) as { key: string };

    const hub = await serve(imageCmd, env, app, port);
    running.push(hub);
    await assertHealthyAndReady(hub, 'postgres');
    const proxied = await fetch(`${hub.url}/api/nodes`, { headers: { 'x-api-key': key } });
    const body = await proxied.text();
    assert.equal(proxied.status, 200, body);
    const echoed = JSON.parse(body) as { placeholder: string; path: string; user: string | null };
    assert.equal(echoed.path, '/api/nodes');
    assert.ok(echoed.user, 'the hub told the upstream who called (X-User-ID)');
    const refused = await fetch(`${hub.url}/api/nodes`);
    assert.equal(refused.status, 401, 'no credential, no proxying');
    assert.equal(await hub.stop(), 0, hub.output());
  });

  it('the Deployment\'s environment with its Secret: two replicas on one PostgreSQL and Redis, ready, a key created on the store works on both, each drains on SIGTERM', async () => {
    const deployment = ofKind<K8sObject & { spec: { template: { spec: PodSpec } } }>('Deployment');
    const container = deployment.spec.template.spec.containers[0]!;
    const db = await freshDatabase();
    databases.push(db);
    const upstream = await placeholder();
    const secret: Record<string, string> = { // kubectl create secret generic mimir-auth --from-literal=…
      'database-url': db.url, 'redis-url': REDIS_URL,
      'jwt-secret': randomBytes(48).toString('base64'), 'session-secret': randomBytes(48).toString('base64'),
    };
    const podEnv: Record<string, string> = {};
    for (const e of container.env) {
      const ref = e.valueFrom?.secretKeyRef;
      const value = ref ? secret[ref.key] : e.value;
      assert.ok(value !== undefined, `${e.name}: the Secret has a key ${ref?.key}`);
      podEnv[e.name] = value;
    }
    const prefix = newRedisPrefix(); // the shared test Redis: keys of this test's own
    const replica = async () => {
      const port = await freePort();
      const env = childEnv({
        ...imageEnvAt(app), ...podEnv, HOME: work, MIMIR_REDIS_KEY_PREFIX: prefix,
        MIMIR_DATA_DIR: mkdtempSync(join(work, 'pod-data-')), MIMIR_AUTH_PORT: String(port),
        MIMIR_UPSTREAM_URL: upstream.url, // the Service mimir:3000
      });
      return { env, hub: await serve(imageCmd, env, app, port) };
    };
    const [a, b] = [await replica(), await replica()];
    running.push(a.hub, b.hub);
    await assertHealthyAndReady(a.hub, 'postgres');
    await assertHealthyAndReady(b.hub, 'postgres');
    // What the kubelet would ask, from the manifest itself.
    for (const hub of [a.hub, b.hub]) {
      for (const probe of [container.livenessProbe, container.readinessProbe]) {
        const res = await fetch(`${hub.url}${probe.httpGet.path}`);
        assert.equal(res.status, 200, `${probe.httpGet.path}: ${await res.text()}`);
      }
    }

    const created = await run('mimir-auth', ['keys', 'create', '--name', 'pod', '--roles', 'viewer', '--json'], app, a.env);
    assert.equal(created.code, 0, show(created));
    const { key } = JSON.parse(created.stdout) as { key: string };
    for (const hub of [a.hub, b.hub]) {
      const me = await fetch(`${hub.url}/auth/me`, { headers: { 'x-api-key': key } });
      assert.equal(me.status, 200, await me.text());
    }
    assert.equal(await a.hub.stop(), 0, a.hub.output());
    assert.equal(await b.hub.stop(), 0, b.hub.output());
  });

  it('the systemd unit\'s ExecStart with its Environment= and the example EnvironmentFile: /health and /ready answer, SIGTERM drains', async () => {
    const upstream = await placeholder();
    const stateDirectory = mkdtempSync(join(work, 'state-')); // /var/lib/mimir-auth
    const port = await freePort();
    const secrets = { MIMIR_JWT_SECRET: randomBytes(48).toString('base64'), MIMIR_SESSION_SECRET: randomBytes(48).toString('base64') };
    // systemd: Environment= first, then EnvironmentFile= overrides; the file's empty secrets are filled in, as the operator does.
    const env = childEnv({
      ...unitEnv, ...envFileExample, ...secrets, HOME: work,
      MIMIR_DATA_DIR: stateDirectory, MIMIR_AUTH_PORT: String(port), MIMIR_UPSTREAM_URL: upstream.url,
    });
    const [execPath, ...args] = one('ExecStart').split(' ');
    const installed = execPath!.replace(/^\/opt\/mimir-auth\//, `${app}/`); // where the package is installed
    const hub = await serve([installed, ...args], env, stateDirectory, port);
    running.push(hub);
    await assertHealthyAndReady(hub, 'sqlite');
    assert.match(hub.output(), new RegExp(`listening on http://127\\.0\\.0\\.1:${port} \\(public URL ${envFileExample.MIMIR_PUBLIC_URL}\\)`));
    assert.ok(existsSync(join(stateDirectory, 'mimir-auth.db')), 'the database is in the state directory');
    assert.equal(await hub.stop(), 0, hub.output());
  });
});
