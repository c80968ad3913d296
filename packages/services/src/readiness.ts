import type { Services } from './index.js';

/** A dependency a process needs before it can serve; `/readyz` runs each check. */
export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency can serve; rejects with the reason otherwise. */
  check: () => Promise<void>;
}

/** One check's outcome, as `/readyz` reports it. */
export interface ReadinessResult {
  name: string;
  ok: boolean;
  reason?: string;
}

/**
 * The checks every Lookalike process that serves needs: the store answers, the queue answers (a round trip to Redis
 * with BullMQ, named `redis`; `queue` in-process, which always answers) and the models are loaded.
 */
export function dependencyChecks(
  deps: Pick<Services, 'config' | 'store' | 'runner' | 'encoders' | 'text'>,
): ReadinessCheck[] {
  return [
    { name: 'store', check: () => deps.store.ping() },
    { name: deps.config.redis ? 'redis' : 'queue', check: () => deps.runner.counts().then(() => undefined) },
    {
      name: 'models',
      check: () =>
        [deps.encoders.robust.info, deps.encoders.clean.info, deps.text.info].every((m) => m.dim > 0)
          ? Promise.resolve()
          : Promise.reject(new Error('a model is not loaded')),
    },
  ];
}

/** Runs every check at once; ready when all pass, with each failure's reason. */
export async function runReadiness(
  checks: readonly ReadinessCheck[],
): Promise<{ ready: boolean; checks: ReadinessResult[] }> {
  const results = await Promise.all(
    checks.map(async ({ name, check }): Promise<ReadinessResult> => {
      try {
        await check();
        return { name, ok: true };
      } catch (error) {
        return { name, ok: false, reason: error instanceof Error ? error.message : String(error) };
      }
    }),
  );
  return { ready: results.every((r) => r.ok), checks: results };
}
