import type { Command } from 'commander';
import { AppError, CAPTION_VERDICTS, loadConfig, type CaptionVerdict } from '@lookalike/core';
import type { CaptionScreen, ScreeningPage, ScreeningSummary } from '@lookalike/screening';
import { createServices } from '@lookalike/services';
import { Option } from 'commander';

/** The screening report: the policy, the mixture, the counts, then the listed images, most suspect first. */
export function formatScreening(summary: ScreeningSummary, page: ScreeningPage, refit?: string): string {
  const { policy, model, counts } = summary;
  const lines = [
    `Caption screening (${policy.tower} tower, trusted at clean-component probability ≥ ${policy.threshold}, ` +
      `judging from ${policy.minCount} captioned images):`,
  ];
  if (refit) lines.push(`  ${refit}`);
  lines.push(
    model
      ? `  mixture fitted ${model.fittedAt} on ${model.count} captions: clean ${model.high.mean.toFixed(3)} ± ` +
          `${model.high.sd.toFixed(3)}, low ${model.low.mean.toFixed(3)} ± ${model.low.sd.toFixed(3)} ` +
          `(${(100 * model.low.weight).toFixed(1)} %; ${model.lowFrom === 'unrelated' ? `measured on ${model.unrelatedPairs} unrelated pairs` : 'fitted'}), Ashman's D ${model.separation.toFixed(2)}, BIC gain ` +
          `${model.bicGain.toFixed(1)}; ` +
          (model.boundary === null
            ? 'the tower does not separate matching from unrelated captions: every caption is trusted'
            : `suspicious below similarity ${model.boundary.toFixed(3)}`)
      : '  no mixture yet: captions stay pending until the collection holds enough of them',
    `  ${CAPTION_VERDICTS.map((v) => `${counts[v]} ${v}`).join(', ')}`,
    '',
    `${page.verdict} (${page.total}${page.images.length < page.total ? `, the first ${page.images.length}` : ''}):`,
  );
  for (const { id, payload } of page.images) {
    const s = payload.screening;
    const caption = payload.caption ?? s.withdrawnCaption ?? '';
    lines.push(
      `  ${s.similarity[s.tower].toFixed(3).padStart(6)}  ${payload.source}  "${caption}"  ${id.slice(0, 12)}` +
        (s.review ? `  (${s.review} ${s.reviewedAt ?? ''})` : ''),
    );
  }
  return lines.join('\n');
}

async function report(screen: CaptionScreen, verdict: CaptionVerdict, limit: number, refit: boolean) {
  let note: string | undefined;
  if (refit) {
    const r = await screen.refit();
    note = r
      ? `refitted: ${r.rejudged} stored captions changed verdict, ${r.suspicious} suspicious now`
      : 'not refitted: the collection holds too few captioned images';
  }
  const [summary, page] = await Promise.all([screen.summary(), screen.list({ verdict, limit })]);
  return { summary, page, note };
}

/** Adds `lookalike screening` to the program. */
export function registerScreening(
  program: Command,
  integer: (name: string, min: number, max: number) => (v: string) => number,
): void {
  program
    .command('screening')
    .description(
      'Report caption screening (SafeCLIP): the mixture over image–caption similarities, the counts per verdict, ' +
        'and the captions flagged as suspicious (or another verdict), most suspect first.',
    )
    .addOption(
      new Option('--verdict <verdict>', 'which captions to list').choices(CAPTION_VERDICTS).default('suspicious'),
    )
    .option('--limit <n>', 'captions listed', integer('--limit', 1, 100_000), 50)
    .option('--refit', 'fit the mixture again now and rejudge every stored caption first', false)
    .option('--json', 'print the report as JSON', false)
    .action(async (flags: { verdict: CaptionVerdict; limit: number; refit: boolean; json: boolean }) => {
      const services = await createServices(loadConfig(process.env), { searchIndex: 'lazy', workers: [] });
      try {
        const screen = services.screening;
        if (!screen)
          throw new AppError(
            'CONFLICT',
            'Caption screening is off (SCREENING=off, or the text tower does not embed into the towers’ space).',
          );
        const { summary, page, note } = await report(screen, flags.verdict, flags.limit, flags.refit);
        console.log(
          flags.json
            ? JSON.stringify({ ...summary, ...page, ...(note ? { refit: note } : {}) }, null, 2)
            : formatScreening(summary, page, note),
        );
      } finally {
        await services.close();
      }
    });
}
