import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessJobRunner, type IngestSource } from '@lookalike/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestRunHandler, PAGE_BATCHES, type RunResult } from './run.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ingest-run-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/**
 * Runs one ingest-run job on the in-process runner, with batch jobs that only record what they were given; returns
 * the batches in the order they were queued, the run's progress reports and its result.
 */
async function run(source: IngestSource, batchSize: number, runId = 'r') {
  const batches: { batch: number; locations: string[] }[] = [];
  const progress: unknown[] = [];
  const runner = new InProcessJobRunner({
    'ingest-run': ingestRunHandler({ roots: [dir], fetch: { maxBytes: 1 << 20, timeoutMs: 1000 } }),
    'ingest-batch': (payload) => {
      batches.push({ batch: payload.batch, locations: payload.items.map((i) => i.location) });
      return Promise.resolve({ batch: payload.batch, done: 0, skipped: 0, failed: [], ids: [] });
    },
  });
  const failures: string[] = [];
  runner.events.on('progress', (id, name, p) => name === 'ingest-run' && progress.push(p));
  runner.events.on('failed', (_id, name, reason) => failures.push(`${name}: ${reason}`));
  const { id } = await runner.enqueue('ingest-run', { runId, source, batchSize }, { jobId: runId });
  await runner.idle();
  const job = await runner.getJob(id);
  await runner.close();
  return { batches, progress, result: job?.result as RunResult | undefined, failures, job };
}

describe(ingestRunHandler.name, () => {
  it('streams a manifest into batches of the given size, queued a page at a time, with the bad lines reported', async () => {
    const lines = 2 * PAGE_BATCHES * 3 + 5;
    const text = Array.from({ length: lines }, (_, i) => (i === 7 ? 'not json' : JSON.stringify({ path: `${i}.png` })));
    await writeFile(join(dir, 'm.jsonl'), text.join('\n') + '\n');
    const { batches, progress, result, failures } = await run({ kind: 'manifest', location: join(dir, 'm.jsonl') }, 3);
    expect(failures).toEqual([]);
    const items = lines - 1;
    const count = Math.ceil(items / 3);
    expect(result).toEqual({ items, batches: count, manifestProblems: [{ line: 8, reason: expect.any(String) }] });
    // Every item once, in the file's order, in batches of 3 numbered 0.. (the last one short).
    expect(batches.map((b) => b.batch).sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
    const inOrder = [...batches].sort((a, b) => a.batch - b.batch);
    expect(inOrder.flatMap((b) => b.locations)).toEqual(
      Array.from({ length: lines }, (_, i) => join(dir, `${i}.png`)).filter((_, i) => i !== 7),
    );
    expect(inOrder.slice(0, -1).every((b) => b.locations.length === 3)).toBe(true);
    // One progress report per page of PAGE_BATCHES batch jobs, then the last.
    expect(progress).toEqual([
      { items: PAGE_BATCHES * 3, batches: PAGE_BATCHES },
      { items: 2 * PAGE_BATCHES * 3, batches: 2 * PAGE_BATCHES },
      { items, batches: count },
    ]);
  });

  it('fails a manifest it cannot read as bad input, and queues nothing for an empty one', async () => {
    await writeFile(join(dir, 'empty.csv'), 'path\n');
    const empty = await run({ kind: 'manifest', location: join(dir, 'empty.csv') }, 4, 'empty');
    expect(empty.result).toEqual({ items: 0, batches: 0, manifestProblems: [] });
    expect(empty.batches).toEqual([]);
    await writeFile(join(dir, 'broken.csv'), 'path\n"a.png\n');
    const broken = await run({ kind: 'manifest', location: join(dir, 'broken.csv') }, 4, 'broken');
    expect(broken.job?.state).toBe('failed');
    expect(broken.failures).toEqual([expect.stringMatching(/ingest-run: the CSV manifest cannot be parsed/)]);
    const outside = await run({ kind: 'manifest', location: '/etc/passwd.jsonl' }, 4, 'outside');
    expect(outside.job?.state).toBe('failed');
    expect(outside.batches).toEqual([]);
  });
});
