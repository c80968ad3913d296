/**
 * The 10,000-image proof, on the built apps: a seeded synthetic catalog (cached in bench/.cache) is ingested through
 * BullMQ by real worker processes (apps/worker/dist/main.js) into the embedded store in a temp DATA_DIR; once every
 * batch has completed or failed for good the store must hold exactly one point per image. A second ingest of the
 * same manifest must add nothing (every image skipped) and leave the count unchanged. Prints PASS or FAIL with
 * timings, writes bench/results/ingest-proof.json, and deletes the Redis keys of its unique queue prefix.
 *
 *   npm run build && npm run proof:ingest [-- --count 10000 --workers 1 --concurrency 2 --batch-size 32]
 *
 * One worker process is the default: the embedded store is one LanceDB table, and while LanceDB serialises
 * concurrent commits from several processes (optimistic concurrency, retried), a process's reads do not see other
 * processes' writes (no read-consistency interval is set), so with several processes the second pass re-embeds
 * images another process stored instead of skipping them. Several worker processes are for Qdrant.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { inspect, parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { scrollPoints } from '@lookalike/core';
import { ModelRegistry } from '@lookalike/encoder';
import type { BatchResult, RunResult } from '@lookalike/ingest';
import { BullJobRunner, type JobName } from '@lookalike/queue';
import { INDEXED_FIELDS } from '@lookalike/services';
import { EmbeddedVectorStore } from '@lookalike/store-embedded';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '7' },
    workers: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '2' },
    'batch-size': { type: 'string', default: '32' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    'timeout-min': { type: 'string', default: '60' },
    keep: { type: 'boolean', default: false },
  },
});
const COUNT = Number(values.count);
const WORKERS = Number(values.workers);
const REDIS_URL = values.redis;
const CLI = resolve('apps/cli/dist/main.js');
const WORKER = resolve('apps/worker/dist/main.js');
const MODELS = resolve('models');
const CATALOG = resolve(`bench/.cache/proof-catalog-n${COUNT}-s${values.seed}`);

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const log = (line: string) => console.error(`[proof] ${line}`);

/** Runs a built app to completion, passing its output through. */
function runApp(args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`${args.join(' ')} exited with ${code}`))));
  });
}

/** Starts a worker process and resolves once it says it is ready. */
function startWorker(n: number, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((ready, fail) => {
    const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = (stream: NodeJS.ReadableStream | null) =>
      createInterface({ input: stream! }).on('line', (line) => {
        log(`worker ${n}: ${line}`);
        if (line.startsWith('Worker ready')) ready(child);
      });
    lines(child.stdout);
    lines(child.stderr);
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`worker ${n} exited with ${code} before it was ready`)));
  });
}

interface Pass {
  runId: string;
  items: number;
  batches: number;
  done: number;
  skipped: number;
  failed: number;
  lostBatches: number;
  seconds: number;
  imagesPerSecond: number;
  points: number;
  distinctIds: number;
}

/** Counts the store's points and distinct ids through a fresh connection (it sees every process's commits). */
async function countStore(dataDir: string): Promise<{ points: number; distinctIds: number }> {
  const registry = await ModelRegistry.open(MODELS);
  const store = await EmbeddedVectorStore.open(join(dataDir, 'store'));
  try {
    await store.ensureCollection({
      name: 'lookalike',
      dims: {
        robust: registry.image('defect-cnn-fare4').output.dim,
        clean: registry.image('defect-cnn-clean').output.dim,
      },
      indexedFields: INDEXED_FIELDS,
    });
    const ids = new Set<string>();
    for await (const p of scrollPoints(store)) ids.add(p.id);
    return { points: await store.count(), distinctIds: ids.size };
  } finally {
    await store.close();
  }
}

/** Enqueues one ingest run of the manifest and waits until every batch completed or failed for good. */
async function ingestOnce(runner: BullJobRunner, runId: string, dataDir: string): Promise<Pass> {
  const t0 = performance.now();
  const pass = { runId, items: -1, batches: -1, done: 0, skipped: 0, failed: 0, lostBatches: 0 };
  const finished = new Set<string>();
  let runFailed: string | undefined;
  const onCompleted = (id: string, name: JobName, result: unknown) => {
    if (name === 'ingest-run' && id === runId) {
      const r = result as RunResult;
      pass.items = r.items;
      pass.batches = r.batches;
    } else if (name === 'ingest-batch' && id.startsWith(`${runId}.`) && !finished.has(id)) {
      finished.add(id);
      const r = result as BatchResult;
      pass.done += r.done;
      pass.skipped += r.skipped;
      pass.failed += r.failed.length;
    }
  };
  const onFailed = (id: string, name: JobName, reason: string, final: boolean) => {
    if (!final) return log(`${id} failed (${reason}); it will be retried`);
    if (name === 'ingest-run' && id === runId) runFailed = reason;
    else if (id.startsWith(`${runId}.`) && !finished.has(id)) {
      finished.add(id);
      pass.lostBatches++;
      log(`${id} failed for good: ${reason}`);
    }
  };
  runner.events.on('completed', onCompleted);
  runner.events.on('failed', onFailed);
  try {
    await runner.enqueue(
      'ingest-run',
      {
        runId,
        source: { kind: 'manifest', location: join(CATALOG, 'manifest.jsonl') },
        batchSize: Number(values['batch-size']),
      },
      { jobId: runId },
    );
    const deadline = performance.now() + Number(values['timeout-min']) * 60_000;
    let lastReport = performance.now();
    while (!(pass.batches >= 0 && finished.size >= pass.batches)) {
      if (runFailed) throw new Error(`the run job failed: ${runFailed}`);
      if (performance.now() > deadline) throw new Error(`timed out with ${finished.size} of ${pass.batches} batches`);
      await new Promise((r) => setTimeout(r, 200));
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        const processed = pass.done + pass.skipped + pass.failed;
        log(
          `${runId}: ${finished.size}/${pass.batches} batches, ${processed} images, ` +
            `${(processed / seconds(t0)).toFixed(1)} img/s`,
        );
      }
    }
  } finally {
    runner.events.off('completed', onCompleted);
    runner.events.off('failed', onFailed);
  }
  const s = seconds(t0);
  return { ...pass, seconds: s, imagesPerSecond: pass.items / s, ...(await countStore(dataDir)) };
}

/** Deletes every Redis key under the prefix; returns how many there were. */
async function deleteKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

async function main(): Promise<number> {
  if (!existsSync(CLI) || !existsSync(WORKER)) throw new Error('the apps are not built; run `npm run build` first');
  if (WORKERS > 1)
    log(
      `${WORKERS} worker processes on one embedded store: commits are serialised, but each process reads only ` +
        'its own writes, so the second pass may re-embed instead of skipping (see the header of this file).',
    );
  let synthSeconds: number | undefined;
  if (!existsSync(join(CATALOG, 'catalog.json'))) {
    log(`Writing the ${COUNT}-image catalog (seed ${values.seed}) to ${CATALOG}; later runs reuse it.`);
    const t0 = performance.now();
    await mkdir(CATALOG, { recursive: true });
    await runApp([CLI, 'synth', '--out', CATALOG, '--count', String(COUNT), '--seed', values.seed, '--overwrite']);
    synthSeconds = seconds(t0);
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'ingest-proof-'));
  const prefix = `proof-${randomUUID()}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    DATA_DIR: dataDir,
    INGEST_ROOTS: CATALOG,
    MODELS_DIR: MODELS,
    INGEST_CONCURRENCY: values.concurrency,
  };
  delete env.QDRANT_URL;
  const workers: ChildProcess[] = [];
  const runner = new BullJobRunner(REDIS_URL, { prefix });
  const passes: Pass[] = [];
  let error: Error | undefined;
  try {
    // One at a time: the first creates the store's table.
    for (let n = 1; n <= WORKERS; n++) workers.push(await startWorker(n, env));
    log(`${WORKERS} worker process(es), concurrency ${values.concurrency} each, queue prefix ${prefix}.`);
    for (const runId of ['proof-1', 'proof-2']) {
      passes.push(await ingestOnce(runner, runId, dataDir));
      const p = passes.at(-1)!;
      log(
        `${runId}: ${p.done} new, ${p.skipped} skipped, ${p.failed} failed, ${p.lostBatches} batches lost, ` +
          `${p.points} points (${p.distinctIds} distinct ids) in ${p.seconds.toFixed(1)} s`,
      );
    }
  } catch (e) {
    error = e instanceof Error ? e : new Error(inspect(e));
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(
      workers.map((w) => (w.exitCode === null ? new Promise((r) => w.once('exit', r)) : Promise.resolve())),
    );
    await runner.close();
  }
  const keys = await deleteKeys(prefix);
  if (!values.keep) await rm(dataDir, { recursive: true, force: true });

  const [first, second] = passes;
  const checks: [string, boolean][] = [
    ['every batch of both runs completed', !error && passes.length === 2 && passes.every((p) => p.lostBatches === 0)],
    [`first run: ${COUNT} new, 0 failed`, first?.done === COUNT && first.failed === 0],
    [`store holds exactly ${COUNT} points, all distinct`, first?.points === COUNT && first.distinctIds === COUNT],
    [`second run: 0 new, ${COUNT} skipped`, second?.done === 0 && second.skipped === COUNT],
    [`store still holds exactly ${COUNT} points`, second?.points === COUNT && second.distinctIds === COUNT],
  ];
  const pass = checks.every(([, ok]) => ok);
  const result = {
    pass,
    count: COUNT,
    workers: WORKERS,
    concurrency: Number(values.concurrency),
    batchSize: Number(values['batch-size']),
    cores: availableParallelism(),
    synthSeconds,
    passes,
    redisKeysDeleted: keys,
    error: error?.message,
  };
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/ingest-proof.json', JSON.stringify(result, null, 2) + '\n');
  console.log(`\n${pass ? 'PASS' : 'FAIL'}: ${COUNT}-image ingest through BullMQ into the embedded store`);
  for (const [what, ok] of checks) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (error) console.log(`  error: ${error.message}`);
  console.log(
    `  catalog: ${synthSeconds === undefined ? 'cached' : `written in ${synthSeconds.toFixed(0)} s`}; ` +
      `${WORKERS} worker process(es) × concurrency ${values.concurrency}, batches of ${values['batch-size']}, ` +
      `${availableParallelism()} cores`,
  );
  for (const p of passes)
    console.log(
      `  ${p.runId}: ${p.seconds.toFixed(1)} s, ${p.imagesPerSecond.toFixed(1)} img/s ` +
        `(${p.done} new, ${p.skipped} skipped, ${p.failed} failed; ${p.points} points)`,
    );
  console.log(`  Redis: deleted ${keys} keys under ${prefix}:`);
  return pass ? 0 : 1;
}

// Exit explicitly: BullJobRunner.close() leaves its QueueEvents' Redis connections open (reported to packages/queue).
process.exit(await main());
