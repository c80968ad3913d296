import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors/config-error.js';
import { loadConfig, parseConfig } from './config.js';

describe(parseConfig.name, () => {
  it('gives the embedded, in-process defaults for an empty environment', () => {
    const config = parseConfig({});
    expect(config.store).toEqual({ kind: 'embedded', collection: 'lookalike' });
    expect(config.redis).toBeUndefined();
    expect(config.api.port).toBe(8080);
    expect(config.images).toEqual({
      maxBytes: 32 * 1024 * 1024,
      maxPixels: 40_000_000,
      allowSvg: false,
      preprocess: 'fast',
      preprocessThreads: 0,
    });
    expect(config.ingest.roots).toEqual(['data']);
    expect(config.audit.epsilons).toEqual([0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]);
  });

  it('switches to Qdrant and BullMQ when their URLs are set', () => {
    const config = parseConfig({
      QDRANT_URL: 'http://qdrant:6333',
      QDRANT_API_KEY: 'k',
      REDIS_URL: 'redis://127.0.0.1:6379',
      API_KEYS: `read:${'a'.repeat(64)}, write:${'b'.repeat(64)}`,
      INGEST_ROOTS: '/srv/catalog, /mnt/defects',
      ALLOW_SVG: 'yes',
      PREPROCESS: 'exact',
    });
    expect(config.store).toEqual({ kind: 'qdrant', url: 'http://qdrant:6333', apiKey: 'k', collection: 'lookalike' });
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'lookalike', lockMs: 30_000 });
    expect(config.api.keys).toEqual([
      { scope: 'read', sha256: 'a'.repeat(64) },
      { scope: 'write', sha256: 'b'.repeat(64) },
    ]);
    expect(config.ingest.roots).toEqual(['/srv/catalog', '/mnt/defects']);
    expect(config.images.allowSvg).toBe(true);
    expect(config.images.preprocess).toBe('exact');
  });

  it('answers loopback names and the bound host by default, plus ALLOWED_HOSTS', () => {
    expect(parseConfig({}).api.allowedHosts).toEqual(['localhost', '127.0.0.1', '::1']);
    expect(parseConfig({ HOST: 'Lookalike.Internal' }).api.allowedHosts).toEqual([
      'localhost',
      '127.0.0.1',
      '::1',
      'lookalike.internal',
    ]);
    // A wildcard bind address is no name a client sends.
    expect(parseConfig({ HOST: '0.0.0.0' }).api.allowedHosts).toEqual(['localhost', '127.0.0.1', '::1']);
    expect(
      parseConfig({ HOST: '::', ALLOWED_HOSTS: 'search.example.com, [FD00::5], 10.0.0.5' }).api.allowedHosts,
    ).toEqual(['localhost', '127.0.0.1', '::1', 'search.example.com', 'fd00::5', '10.0.0.5']);
    expect(parseConfig({ ALLOWED_HOSTS: 'a.example,*' }).api.allowedHosts).toEqual(['*']);
    expect(() => parseConfig({ ALLOWED_HOSTS: 'search.example.com:8080' })).toThrow(/ALLOWED_HOSTS/);
    expect(() => parseConfig({ ALLOWED_HOSTS: 'https://search.example.com' })).toThrow(/ALLOWED_HOSTS/);
  });

  it('lists every bad variable in one error', () => {
    let error: unknown;
    try {
      parseConfig({
        PORT: 'eighty',
        REDIS_URL: 'http://not-redis',
        MAX_IMAGE_PIXELS: '0',
        AUDIT_EPSILONS: '4/255, 2',
        API_KEYS: 'admin:xyz',
        ALLOW_SVG: 'maybe',
        PREPROCESS: 'pillow',
        QDRANT_API_KEY: 'orphan',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).issues.map((i) => i.path.split('.')[0]).sort();
    expect(paths).toEqual(
      ['ALLOW_SVG', 'API_KEYS', 'AUDIT_EPSILONS', 'MAX_IMAGE_PIXELS', 'PORT', 'PREPROCESS', 'REDIS_URL'].sort(),
    );
    expect((error as ConfigError).message).toMatch(/7 problem\(s\)[\s\S]*PORT: must be a whole number/);
  });

  it('reports cross-field problems once the fields themselves parse', () => {
    expect(() => parseConfig({ QDRANT_API_KEY: 'orphan' })).toThrow(/QDRANT_API_KEY: is set but QDRANT_URL is not/);
  });

  it('caches the parse per environment object', () => {
    const env = { PORT: '9000' };
    expect(loadConfig(env)).toBe(loadConfig(env));
    expect(loadConfig({ PORT: '9001' }).api.port).toBe(9001);
  });
});
