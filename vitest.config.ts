import { configDefaults, defineConfig } from 'vitest/config';

const ALL = [
  'packages/*/src/**/*.test.ts',
  'apps/*/src/**/*.test.ts',
  'packages/*/test/**/*.test.ts',
  'apps/*/test/**/*.test.ts',
  'bench/**/*.test.ts',
];

/**
 * The fast tier (`npm run test:unit`, seconds): tests of pure code that start no Redis client, no onnxruntime
 * session, no browser and no process. Everything else is the integration tier, and so is every new test file until
 * it is listed here. `npm test` runs both.
 */
const UNIT = [
  'packages/core/src/**/*.test.ts',
  'packages/audit/src/{metrics,report}.test.ts',
  'packages/imaging/src/{decode,encode,preprocess,valid-files}.test.ts',
  'packages/ingest/src/{sources,fetch-url,run}.test.ts',
  'packages/encoder/src/batcher.test.ts',
  'packages/synth/src/*.test.ts',
  'packages/distance/src/{calibration,pairs,committed,triplets}.test.ts',
  'packages/screening/src/{mixture,screen}.test.ts',
  'packages/store-qdrant/src/requests.test.ts',
  'packages/testkit/src/*.test.ts',
  'packages/web/test/*.test.ts',
  'packages/http/src/{public-paths,schemas}.test.ts',
  'bench/quality-metrics.test.ts',
];

// Tests import workspace packages through their `source` export condition, so they run against the TypeScript
// sources without a build. The built `dist/` is what apps run in production.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      { extends: true, test: { name: 'integration', include: ALL, exclude: [...configDefaults.exclude, ...UNIT] } },
    ],
  },
});
