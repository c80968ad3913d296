import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envSchema } from '@lookalike/core';
import { findCompose } from '@lookalike/testkit';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The production deployment (docker-compose.yml, Dockerfile, .dockerignore, .env.example) checked without a Docker
// engine: the compose file with a real YAML parser, against the configuration schema and the installed Qdrant
// engine, and with `docker compose config` (the setup step of `npm test` installs a compose binary where none is).

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (file: string) => readFileSync(join(root, file), 'utf8');

interface Healthcheck {
  test?: string[] | string;
  disable?: boolean;
}
interface Service {
  image?: string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: string | string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: Healthcheck;
  deploy?: { replicas?: number };
  profiles?: string[];
  ports?: string[];
  container_name?: string;
  stop_signal?: string;
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const composeText = read('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as Compose;
const services = compose.services;
const schemaKeys = new Set(Object.keys(envSchema.shape));
type SchemaKey = keyof typeof envSchema.shape;
const isSchemaKey = (name: string): name is SchemaKey => schemaKeys.has(name);

/** `${VAR:-default}` and `${VAR}` resolved as compose does with an empty .env (the documented defaults). */
const interpolate = (value: string) =>
  value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_, _name, fallback?: string) => fallback ?? '');

/** A service's environment as compose passes it, interpolated with the defaults. */
function environmentOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  const pairs: [string, string][] = Array.isArray(env)
    ? env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)])
    : Object.entries(env).map(([k, v]) => [k, String(v ?? '')]);
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v)]));
}

const tokens = (cmd: string[] | string | undefined) => (Array.isArray(cmd) ? cmd : (cmd ?? '').split(/\s+/));

/** The services that run the Lookalike image (the API's). */
const appNames = Object.keys(services).filter((name) => services[name]!.image === services.api?.image);
/** The services `docker compose up` starts (profiles are run on demand). */
const upNames = Object.keys(services).filter((name) => !services[name]!.profiles?.length);

/** `30s`, `2m`, `1m30s` in seconds. */
function seconds(duration: string | undefined): number {
  let total = 0;
  for (const [, n, unit] of (duration ?? '').matchAll(/(\d+)(h|m|s)/g))
    total += Number(n) * (unit === 'h' ? 3600 : unit === 'm' ? 60 : 1);
  return total;
}

/** The `name=value` lines of .env.example, commented out or not. */
const envExample = read('.env.example');
const documented = new Map(
  [...envExample.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=(.*)$/gm)].map(([, name, value]) => [name!, value!.trim()]),
);
/** Variables only docker compose reads: the project name and the interpolations in docker-compose.yml. */
const COMPOSE_ONLY = new Set(['COMPOSE_PROJECT_NAME', 'LOOKALIKE_IMAGE', 'API_PUBLISH_PORT']);

describe('docker-compose.yml', () => {
  it('runs Redis, Qdrant, the API, scalable workers, one scheduler and the CLI on demand', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'cli', 'qdrant', 'redis', 'scheduler', 'worker']);
    expect(appNames.sort()).toEqual(['api', 'cli', 'scheduler', 'worker']);
    expect(services.cli!.profiles).toEqual(['cli']);
  });

  it('gives every service that `up` starts a health check, and the one-off CLI none', () => {
    for (const name of upNames) {
      const test = services[name]!.healthcheck?.test;
      expect(Array.isArray(test) && ['CMD', 'CMD-SHELL'].includes(test[0]!) && test.length > 1, name).toBe(true);
      expect(services[name]!.healthcheck?.disable, name).toBeUndefined();
    }
    expect(services.cli!.healthcheck?.disable).toBe(true);
    expect(tokens(services.api!.healthcheck?.test).join(' ')).toContain('/readyz');
    expect(tokens(services.qdrant!.healthcheck?.test).join(' ')).toContain('/readyz');
  });

  it('pins the Qdrant server to an exact patch of the installed client’s minor version', () => {
    const requireFromStore = createRequire(join(root, 'packages/store-qdrant/package.json'));
    let dir = dirname(requireFromStore.resolve('@qdrant/js-client-rest'));
    while (
      !existsSync(join(dir, 'package.json')) ||
      readJson(join(dir, 'package.json')).name !== '@qdrant/js-client-rest'
    )
      dir = dirname(dir);
    const client = readJson(join(dir, 'package.json')).version!;
    expect(readJson(join(root, 'packages/store-qdrant/package.json')).dependencies?.['@qdrant/js-client-rest']).toBe(
      client,
    );
    const tag = /^qdrant\/qdrant:v(\d+)\.(\d+)\.(\d+)$/.exec(services.qdrant!.image ?? '');
    expect(tag, services.qdrant!.image).not.toBeNull();
    expect(`${tag![1]}.${tag![2]}`).toBe(client.split('.').slice(0, 2).join('.'));
    expect(services.qdrant!.volumes?.some((v) => v.endsWith(':/qdrant/storage'))).toBe(true);
  });

  it('runs Redis 7 with an append-only file, no eviction and a volume', () => {
    expect(services.redis!.image).toMatch(/^redis:7\.\d+\.\d+(-alpine)?$/);
    const args = tokens(services.redis!.command).join(' ');
    expect(args).toContain('--appendonly yes');
    expect(args).toContain('--maxmemory-policy noeviction');
    expect(services.redis!.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
  });

  it('sets only variables the configuration schema knows, with values it accepts', () => {
    for (const name of appNames) {
      const env = environmentOf(services[name]!);
      expect(
        Object.keys(env).filter((k) => !isSchemaKey(k)),
        name,
      ).toEqual([]);
      const parsed = envSchema.safeParse(env);
      expect(parsed.success, `${name}: ${parsed.error?.message}`).toBe(true);
      expect(tokens(services[name]!.env_file)).toContain('.env');
      expect(env.NODE_ENV, name).toBe('production');
    }
  });

  it('points the API and every worker at the same Redis, Qdrant and data folder', () => {
    const envs = appNames.map((name) => environmentOf(services[name]!));
    for (const key of ['REDIS_URL', 'QDRANT_URL', 'DATA_DIR', 'MODELS_DIR', 'QUEUE_PREFIX', 'COLLECTION'])
      expect(new Set(envs.map((env) => env[key])).size, key).toBe(1);
    const redis = new URL(envs[0]!.REDIS_URL!);
    const qdrant = new URL(envs[0]!.QDRANT_URL!);
    expect([redis.protocol, redis.hostname, redis.port]).toEqual(['redis:', 'redis', '6379']);
    expect([qdrant.protocol, qdrant.hostname, qdrant.port]).toEqual(['http:', 'qdrant', '6333']);
  });

  it('publishes the API on all interfaces of its container and checks the port it listens on', () => {
    const env = environmentOf(services.api!);
    expect(env.HOST).toBe('0.0.0.0');
    const [target] = interpolate(services.api!.ports![0]!).split(':').slice(-1);
    expect(target).toBe(env.PORT);
    expect(tokens(services.api!.healthcheck?.test).join(' ')).toContain(`http://127.0.0.1:${env.PORT}/readyz`);
    for (const name of appNames.filter((n) => n !== 'api')) expect(services[name]!.ports, name).toBeUndefined();
  });

  it('checks each worker on the port its own /readyz listens on', () => {
    for (const name of ['worker', 'scheduler']) {
      const env = environmentOf(services[name]!);
      expect(env.WORKER_HEALTH_PORT, name).toMatch(/^[1-9]\d*$/);
      expect(tokens(services[name]!.healthcheck?.test).join(' '), name).toContain(
        `http://127.0.0.1:${env.WORKER_HEALTH_PORT}/readyz`,
      );
    }
  });

  it('installs the audit schedule from exactly one scheduler and leaves it off on the scalable workers', () => {
    const schedule = (name: string) =>
      envSchema.shape.AUDIT_SCHEDULE.parse(environmentOf(services[name]!).AUDIT_SCHEDULE);
    expect(schedule('worker')).toBe(false);
    expect(schedule('scheduler')).toBe(true);
    expect(services.scheduler!.deploy?.replicas).toBe(1);
    expect(services.worker!.container_name).toBeUndefined();
    for (const name of ['worker', 'scheduler'])
      expect(tokens(services[name]!.command), name).toEqual(['node', 'apps/worker/dist/main.js']);
  });

  it('starts services only after what they depend on is healthy', () => {
    for (const [name, service] of Object.entries(services)) {
      const deps = service.depends_on ?? {};
      expect(Array.isArray(deps), `${name}: depends_on needs conditions`).toBe(false);
      for (const [dep, { condition }] of Object.entries(deps)) {
        expect(condition, `${name} → ${dep}`).toBe('service_healthy');
        expect(services[dep]?.healthcheck?.test, `${name} → ${dep}`).toBeDefined();
      }
    }
    for (const name of appNames)
      expect(Object.keys(services[name]!.depends_on ?? {}).sort()).toEqual(['qdrant', 'redis']);
  });

  it('declares every named volume, shares the data volume and mounts models read-only', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const used = new Set<string>();
    for (const service of Object.values(services))
      for (const spec of service.volumes ?? []) {
        const source = spec.split(':')[0]!;
        if (!/^[./~]/.test(source)) used.add(source);
      }
    expect([...used].sort()).toEqual(declared.sort());
    for (const name of appNames) {
      const env = environmentOf(services[name]!);
      const volumes = services[name]!.volumes ?? [];
      expect(volumes, name).toContain(`data:${env.DATA_DIR}`);
      expect(volumes, name).toContain('models:/models:ro');
    }
  });

  it('stops the Lookalike services with SIGTERM and time to finish their work', () => {
    for (const name of appNames) expect(services[name]!.stop_signal ?? 'SIGTERM', name).toBe('SIGTERM');
    // The API drains requests for up to 10 s before closing; workers let running jobs finish.
    expect(seconds(services.api!.stop_grace_period)).toBeGreaterThan(10);
    for (const name of ['worker', 'scheduler'])
      expect(seconds(services[name]!.stop_grace_period), name).toBeGreaterThanOrEqual(60);
  });

  it('passes `docker compose config` with .env copied from .env.example', () => {
    // `npm test`'s setup step installs Debian's docker-compose where none is there (packages/testkit).
    const binary = findCompose();
    if (!binary)
      throw new Error(
        'No docker compose on this machine, so docker-compose.yml was not checked: install docker compose, or run ' +
          '`npm run test:setup` (as root it installs it).',
      );
    const dir = mkdtempSync(join(tmpdir(), 'lookalike-compose-'));
    try {
      copyFileSync(join(root, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
      copyFileSync(join(root, '.env.example'), join(dir, '.env'));
      const [cmd, ...args] = binary;
      const run = spawnSync(cmd!, [...args, '-f', 'docker-compose.yml', 'config', '-q'], {
        cwd: dir,
        encoding: 'utf8',
      });
      expect(run.status, `${binary.join(' ')} config: ${run.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('.env.example', () => {
  it('documents every variable of the configuration schema with its default', () => {
    for (const key of schemaKeys) {
      expect(documented.has(key), key).toBe(true);
      const value = documented.get(key)!;
      // An empty value documents "unset"; any other is the default, parsed as the apps parse it.
      if (value !== '')
        expect(envSchema.shape[key as SchemaKey].parse(value), key).toEqual(
          envSchema.shape[key as SchemaKey].parse(undefined),
        );
    }
  });

  it('names no variable that neither Lookalike nor docker compose reads, and every one the compose file uses', () => {
    expect([...documented.keys()].filter((k) => !isSchemaKey(k) && !COMPOSE_ONLY.has(k))).toEqual([]);
    const interpolated = [...composeText.matchAll(/\$\{(\w+)/g)].map(([, name]) => name!);
    expect(interpolated.filter((name) => !documented.has(name))).toEqual([]);
  });

  it('makes an API key entry that the configuration accepts and that hashes the key', () => {
    const line = /^#\s+(KEY=\$\(openssl.*)$/m.exec(envExample)?.[1];
    expect(line).toBeDefined();
    const out = spawnSync('bash', ['-c', line!], { encoding: 'utf8' });
    const [, key, entry] = /key: (\S+)\s+entry: (\S+)/.exec(out.stdout) ?? [];
    expect(entry).toBe(`write:${createHash('sha256').update(key!).digest('hex')}`);
    expect(envSchema.shape.API_KEYS.parse(entry)).toEqual([{ scope: 'write', sha256: entry!.slice(6) }]);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile').replace(/\\\n/g, ' ');
  const instructions = dockerfile
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const stages = instructions.filter((line) => /^FROM /i.test(line));
  const runtime = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

  it('builds and runs on Node 20, at least the version package.json asks for', () => {
    const required = /(\d+)\.(\d+)\.(\d+)/
      .exec(readJson(join(root, 'package.json')).engines!.node!)!
      .slice(1)
      .map(Number);
    const names = stages.map((from) => /\sAS\s+(\S+)$/i.exec(from)?.[1]);
    const bases = stages.filter((from) => !names.includes(/^FROM (\S+)/i.exec(from)![1]));
    expect(bases.length).toBeGreaterThan(0);
    for (const from of bases) {
      const image = /^FROM (\S+)/i.exec(from)![1]!;
      const version = /^node:(20)\.(\d+)\.(\d+)-bookworm-slim$/.exec(image);
      expect(version, from).not.toBeNull();
      const [major, minor, patch] = version!.slice(1).map(Number) as [number, number, number];
      expect(major * 1e6 + minor * 1e3 + patch, from).toBeGreaterThanOrEqual(
        required[0]! * 1e6 + required[1]! * 1e3 + required[2]!,
      );
    }
  });

  it('runs as a user other than root in production mode', () => {
    const user = runtime.filter((line) => /^USER /i.test(line)).at(-1);
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user!.split(/\s+/)[1]!.split(':')[0]);
    expect(runtime.some((line) => /^ENV .*NODE_ENV=production/.test(line))).toBe(true);
    expect(runtime.some((line) => /^HEALTHCHECK .*\/readyz/.test(line))).toBe(true);
  });

  it('installs from the lockfile with .npmrc, builds, and keeps dev dependencies out of the image', () => {
    expect(dockerfile).toMatch(/cp package\.json package-lock\.json \.npmrc /);
    expect(dockerfile).toMatch(/RUN .*npm ci /);
    expect(dockerfile).toMatch(/RUN npm run build/);
    expect(dockerfile).toMatch(/RUN npm prune --omit=dev/);
  });

  it('starts entry points that the build produces, the API by default', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(cmd).toEqual(tokens(services.api!.command));
    const entries = [cmd, ...appNames.flatMap((n) => [tokens(services[n]!.command), tokens(services[n]!.entrypoint)])]
      .flat()
      .filter((arg) => /^apps\/.*\.js$/.test(arg));
    expect(new Set(entries)).toEqual(
      new Set(['apps/api/dist/main.js', 'apps/worker/dist/main.js', 'apps/cli/dist/main.js']),
    );
    for (const entry of entries) {
      expect(existsSync(join(root, entry.replace('/dist/', '/src/').replace(/\.js$/, '.ts'))), entry).toBe(true);
      expect(existsSync(join(root, entry)), `${entry} (run npm run build first)`).toBe(true);
    }
  });
});

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  it('leaves out installed and built files, local data, secrets and git', () => {
    for (const path of [
      'node_modules',
      'dist',
      'data',
      '.git',
      '.env',
      'test-artifacts',
      'bench/.cache',
      'models/training/work',
    ])
      expect(patterns.includes(path) || patterns.includes(`**/${path}`), path).toBe(true);
  });

  it('keeps what the build needs', () => {
    for (const path of ['package.json', 'package-lock.json', '.npmrc', 'apps', 'packages', 'models', '*', '**'])
      expect(patterns, path).not.toContain(path);
  });
});

function readJson(file: string): {
  name?: string;
  version?: string;
  engines?: Record<string, string>;
  dependencies?: Record<string, string>;
} {
  return JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof readJson>;
}
