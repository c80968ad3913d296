import { z } from 'zod';
import { ConfigError } from './errors/config-error.js';
import { toValidationIssues } from './errors/issues.js';
import { PREPROCESS_MODES, type EncoderRole, type PreprocessMode } from './types.js';

const MiB = 1024 * 1024;

const int = (min: number, max: number, fallback: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional()
    .transform((v) => v ?? fallback);

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
    .optional()
    .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1' || v === 'yes'));

/** A number strictly between 0 and 1 (a threshold), or unset. */
const threshold = z
  .string()
  .trim()
  .regex(/^\d*\.?\d+$/, 'must be a number')
  .transform(Number)
  .pipe(z.number().gt(0).lt(1))
  .optional();

const list = z
  .string()
  .optional()
  .transform((v) =>
    (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );

const url = (protocols: RegExp, hint: string) =>
  z
    .url({ protocol: protocols, error: `must be a URL such as ${hint}` })
    .optional()
    .or(z.literal('').transform(() => undefined));

/** `0`, `0.0157`, `4/255`: a budget in [0,1] pixel units. */
const fraction = z
  .string()
  .trim()
  .regex(/^(\d+(\.\d+)?)(\/\d+(\.\d+)?)?$/, 'each value must look like 4/255 or 0.0157')
  .transform((s) => {
    const [num, den] = s.split('/');
    return Number(num) / (den === undefined ? 1 : Number(den));
  })
  .pipe(z.number().min(0).max(1, 'must be at most 1 (pixel values are in [0,1])'));

const apiKey = z
  .string()
  .regex(/^(read|write):[0-9a-f]{64}$/, 'each entry must be read:<sha256 hex> or write:<sha256 hex>')
  .transform((s) => {
    const [scope, hash] = s.split(':') as ['read' | 'write', string];
    return { scope, sha256: hash };
  });

/** A Host name the API answers: a DNS name, an IPv4 address, an IPv6 address (brackets optional) or `*`. */
const hostName = z
  .string()
  .regex(
    /^(\*|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[?[0-9A-Fa-f:.]+\]?)$/,
    {
      message: 'each entry must be a host name or address without a port (search.example.com, 10.0.0.5, ::1) or *',
    },
  )
  .transform((s) => s.toLowerCase().replace(/^\[(.*)\]$/, '$1'));

/** Host names every instance answers: a request naming one was sent to this machine's loopback interface. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'] as const;

const cron = z
  .string()
  .trim()
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields, e.g. "0 3 * * *"');

/**
 * The environment variables Lookalike reads, with their defaults. Unknown variables are ignored; every problem with a
 * known one is reported at once.
 */
export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DATA_DIR: z.string().min(1).default('data'),
    MODELS_DIR: z.string().min(1).default('models'),
    ROBUST_MODEL: z.string().min(1).default('defect-cnn-fare4'),
    CLEAN_MODEL: z.string().min(1).default('defect-cnn-clean'),
    TEXT_MODEL: z.string().min(1).default('defect-cnn-text'),
    REDIS_URL: url(/^rediss?$/, 'redis://127.0.0.1:6379'),
    /** Key prefix of every queue in Redis, so several deployments (or test runs) can share one server. */
    QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be letters, digits, _ or -')
      .default('lookalike'),
    /** How long a worker's job lock lasts without renewal (renewed every half of it), and how often workers look for
     * jobs whose lock ran out: a job of a killed worker is taken up again within about twice this. BullMQ's default. */
    JOB_LOCK_MS: int(1000, 600_000, 30_000),
    QDRANT_URL: url(/^https?$/, 'http://127.0.0.1:6333'),
    QDRANT_API_KEY: z.string().min(1).optional(),
    COLLECTION: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1–64 letters, digits, _ or -')
      .default('lookalike'),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: int(0, 65535, 8080),
    /** Where a worker process answers /healthz, /readyz and /metrics; 0 (the default) takes any free port, so several
     * workers can share a host; docker-compose.yml sets 8081 for its health checks. */
    WORKER_HEALTH_HOST: z.string().min(1).default('127.0.0.1'),
    WORKER_HEALTH_PORT: int(0, 65535, 0),
    API_KEYS: z
      .string()
      .optional()
      .transform((v) =>
        (v ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .pipe(z.array(apiKey)),
    /** Host names answered besides the loopback names and HOST; `*` answers any (a proxy in front checks them). */
    ALLOWED_HOSTS: list.pipe(z.array(hostName)),
    RATE_LIMIT_PER_MINUTE: int(1, 1_000_000, 600),
    MAX_UPLOAD_BYTES: int(1024, 1024 * MiB, 32 * MiB),
    MAX_IMAGE_PIXELS: int(1, 1_000_000_000, 40_000_000),
    ALLOW_SVG: bool(false),
    /** How images are resized to the model input: `fast` (libvips shrink-on-load) or `exact` (Pillow, bit for bit). */
    PREPROCESS: z.enum(PREPROCESS_MODES).default('fast'),
    /** Image decoding threads of the process; 0: a quarter of the cores, at least one. */
    PREPROCESS_THREADS: int(0, 256, 0),
    INGEST_ROOTS: list,
    INGEST_BATCH_SIZE: int(1, 1024, 32),
    /**
     * Batch jobs one worker runs at once. 2: a batch embeds while the next one is read and decoded (within a batch
     * the next chunk already is); measured on 2 cores with the tiny towers, 2 ingests about 12 % faster than 1.
     */
    INGEST_CONCURRENCY: int(1, 64, 2),
    /**
     * Which tower's distance groups near-duplicates at ingest (`robust`, the default, or `clean`), or `off`. The
     * threshold is that tower's calibrated same-item threshold (`distance-calibration.json`) unless
     * DUPLICATE_THRESHOLD sets one (a distance 1 − cos in (0, 1)).
     */
    DUPLICATES: z.enum(['robust', 'clean', 'off']).default('robust'),
    DUPLICATE_THRESHOLD: threshold,
    /**
     * Which tower's image–caption similarity screens captions at ingest (SafeCLIP; `robust`, the default, or
     * `clean`), or `off`. Captioned images stay `pending` until the collection holds SCREENING_MIN_COUNT of them; a
     * pair is suspicious when its clean-component probability is below SCREENING_THRESHOLD.
     */
    SCREENING: z.enum(['robust', 'clean', 'off']).default('robust'),
    SCREENING_MIN_COUNT: int(10, 10_000_000, 100),
    SCREENING_THRESHOLD: threshold.transform((v) => v ?? 0.9),
    /**
     * Which tower's quality head scores every image at ingest (PerceptCLIP-style; `robust`, the default, or `clean`),
     * or `off`. An image is `low` quality when its score is under QUALITY_THRESHOLD, or under the threshold in the
     * head's manifest (fitted on a tuning set) when that is unset.
     */
    QUALITY: z.enum(['robust', 'clean', 'off']).default('robust'),
    QUALITY_THRESHOLD: threshold,
    URL_ALLOWLIST: list,
    FETCH_TIMEOUT_MS: int(100, 600_000, 15_000),
    FETCH_MAX_BYTES: int(1024, 1024 * MiB, 32 * MiB),
    ENCODER_THREADS: int(0, 256, 0),
    ENCODER_MAX_BATCH: int(1, 1024, 32),
    ENCODER_MAX_WAIT_MS: int(0, 10_000, 5),
    AUDIT_CRON: cron.default('0 3 * * *'),
    /** Whether worker processes install the nightly audit schedule. */
    AUDIT_SCHEDULE: bool(true),
    AUDIT_QUERIES: int(1, 100_000, 200),
    AUDIT_EPSILONS: z
      .string()
      .default('0,1/255,2/255,4/255,8/255')
      .transform((v) => v.split(',').map((s) => s.trim()))
      .pipe(z.array(fraction).min(1)),
    AUDIT_STEPS: int(1, 10_000, 100),
    AUDIT_ATTACK: z.enum(['pgd', 'apgd']).default('apgd'),
    /** 2AFC triplets of the audit's perceptual part (0 leaves it out). */
    AUDIT_TRIPLETS: int(0, 10_000, 100),
    /** Photos of the audit's quality part: half good, half unusable, each attacked across its gate (0 leaves it out). */
    AUDIT_QUALITY_IMAGES: int(0, 10_000, 40),
  })
  .superRefine((env, ctx) => {
    if (env.QDRANT_API_KEY && !env.QDRANT_URL) {
      ctx.addIssue({ code: 'custom', path: ['QDRANT_API_KEY'], message: 'is set but QDRANT_URL is not' });
    }
    if (env.FETCH_MAX_BYTES > env.MAX_UPLOAD_BYTES * 8) {
      ctx.addIssue({
        code: 'custom',
        path: ['FETCH_MAX_BYTES'],
        message: `must be at most 8 × MAX_UPLOAD_BYTES (${env.MAX_UPLOAD_BYTES * 8})`,
      });
    }
  });

/** The parsed, typed configuration every app builds its adapters from. */
export interface Config {
  env: 'development' | 'production' | 'test';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  paths: { data: string; models: string };
  models: { robust: string; clean: string; text: string };
  /** Absent: jobs run in-process (the embedded default). */
  /** `lockMs`: a worker's job lock (see `JOB_LOCK_MS`). */
  redis: { url: string; prefix: string; lockMs: number } | undefined;
  store:
    | { kind: 'qdrant'; url: string; apiKey: string | undefined; collection: string }
    | { kind: 'embedded'; collection: string };
  api: {
    host: string;
    port: number;
    keys: { scope: 'read' | 'write'; sha256: string }[];
    /**
     * Host names (lowercase, IPv6 without brackets, no port) whose requests are answered: the loopback names, HOST
     * unless it is a wildcard address, and ALLOWED_HOSTS. `['*']` answers any.
     */
    allowedHosts: string[];
    rateLimitPerMinute: number;
    maxUploadBytes: number;
  };
  /** A worker process's own listener for /healthz, /readyz and /metrics. */
  worker: { healthHost: string; healthPort: number };
  images: {
    maxBytes: number;
    maxPixels: number;
    allowSvg: boolean;
    preprocess: PreprocessMode;
    /** Threads of the preprocessing pool; 0 picks the default (a quarter of the cores). */
    preprocessThreads: number;
  };
  ingest: {
    roots: string[];
    batchSize: number;
    concurrency: number;
    urlAllowlist: string[];
    fetchTimeoutMs: number;
    fetchMaxBytes: number;
    /** Near-duplicate grouping at ingest: the tower whose distance groups (or `off`), and a threshold set by hand. */
    duplicates: { tower: EncoderRole | 'off'; threshold?: number };
    /** Caption screening at ingest: the tower whose similarity screens (or `off`), the minimum count, the threshold. */
    screening: { tower: EncoderRole | 'off'; minCount: number; threshold: number };
    /** Quality scoring at ingest: the tower whose quality head scores (or `off`), and a threshold instead of the head's. */
    quality: { tower: EncoderRole | 'off'; threshold?: number };
  };
  encoder: { threads: number; maxBatch: number; maxWaitMs: number };
  audit: {
    cron: string;
    schedule: boolean;
    queries: number;
    epsilons: number[];
    steps: number;
    attack: 'pgd' | 'apgd';
    triplets: number;
    /** Photos of the quality part (0 leaves it out). */
    qualityImages: number;
  };
}

/**
 * Parses environment variables into a {@link Config}. Throws one {@link ConfigError} listing every bad variable.
 * Apps call this once at start-up with `process.env`; nothing else reads the environment.
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(toValidationIssues(result.error.issues));
  }
  const e = result.data;
  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    paths: { data: e.DATA_DIR, models: e.MODELS_DIR },
    models: { robust: e.ROBUST_MODEL, clean: e.CLEAN_MODEL, text: e.TEXT_MODEL },
    redis: e.REDIS_URL ? { url: e.REDIS_URL, prefix: e.QUEUE_PREFIX, lockMs: e.JOB_LOCK_MS } : undefined,
    store: e.QDRANT_URL
      ? { kind: 'qdrant', url: e.QDRANT_URL, apiKey: e.QDRANT_API_KEY, collection: e.COLLECTION }
      : { kind: 'embedded', collection: e.COLLECTION },
    api: {
      host: e.HOST,
      port: e.PORT,
      keys: e.API_KEYS,
      allowedHosts: allowedHosts(e.HOST, e.ALLOWED_HOSTS),
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      maxUploadBytes: e.MAX_UPLOAD_BYTES,
    },
    worker: { healthHost: e.WORKER_HEALTH_HOST, healthPort: e.WORKER_HEALTH_PORT },
    images: {
      maxBytes: e.MAX_UPLOAD_BYTES,
      maxPixels: e.MAX_IMAGE_PIXELS,
      allowSvg: e.ALLOW_SVG,
      preprocess: e.PREPROCESS,
      preprocessThreads: e.PREPROCESS_THREADS,
    },
    ingest: {
      roots: e.INGEST_ROOTS.length > 0 ? e.INGEST_ROOTS : [e.DATA_DIR],
      batchSize: e.INGEST_BATCH_SIZE,
      concurrency: e.INGEST_CONCURRENCY,
      urlAllowlist: e.URL_ALLOWLIST,
      fetchTimeoutMs: e.FETCH_TIMEOUT_MS,
      fetchMaxBytes: e.FETCH_MAX_BYTES,
      duplicates: {
        tower: e.DUPLICATES,
        ...(e.DUPLICATE_THRESHOLD === undefined ? {} : { threshold: e.DUPLICATE_THRESHOLD }),
      },
      screening: { tower: e.SCREENING, minCount: e.SCREENING_MIN_COUNT, threshold: e.SCREENING_THRESHOLD },
      quality: {
        tower: e.QUALITY,
        ...(e.QUALITY_THRESHOLD === undefined ? {} : { threshold: e.QUALITY_THRESHOLD }),
      },
    },
    encoder: { threads: e.ENCODER_THREADS, maxBatch: e.ENCODER_MAX_BATCH, maxWaitMs: e.ENCODER_MAX_WAIT_MS },
    audit: {
      cron: e.AUDIT_CRON,
      schedule: e.AUDIT_SCHEDULE,
      queries: e.AUDIT_QUERIES,
      epsilons: e.AUDIT_EPSILONS,
      steps: e.AUDIT_STEPS,
      attack: e.AUDIT_ATTACK,
      triplets: e.AUDIT_TRIPLETS,
      qualityImages: e.AUDIT_QUALITY_IMAGES,
    },
  };
}

/** The Host names of {@link Config}'s `api.allowedHosts`: loopback, the bound host, the configured ones. */
function allowedHosts(bound: string, configured: readonly string[]): string[] {
  if (configured.includes('*')) return ['*'];
  const host = bound.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  // A wildcard address is not a name any client sends: reached through it, the name is the machine's own.
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  return [...new Set([...LOOPBACK_HOSTS, ...(wildcard ? [] : [host]), ...configured])];
}

let cached: { env: Record<string, string | undefined>; config: Config } | undefined;

/** {@link parseConfig}, parsed once per environment object and cached for the life of the process. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  if (cached?.env !== env) cached = { env, config: parseConfig(env) };
  return cached.config;
}
