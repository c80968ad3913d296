import { generateCatalog, type CatalogInfo, type ImageFormat } from '@lookalike/synth';
import { progressBar } from './progress.js';

export interface SynthFlags {
  count: number;
  seed: number;
  out: string;
  twins: boolean;
  rerenders: number;
  distort: boolean;
  format: ImageFormat;
  size: number;
  overwrite: boolean;
}

/** `lookalike synth`: writes a synthetic catalog with a progress bar and prints what it made. */
export async function runSynth(flags: SynthFlags): Promise<CatalogInfo> {
  const bar = progressBar('synth');
  const started = performance.now();
  try {
    const info = await generateCatalog({
      count: flags.count,
      seed: flags.seed,
      outDir: flags.out,
      twins: flags.twins,
      rerenders: flags.rerenders,
      distort: flags.distort,
      format: flags.format,
      size: flags.size,
      overwrite: flags.overwrite,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.stop();
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `Wrote ${info.images} ${info.format} images (${info.count} items${info.twins ? ' with edited twins' : ''}` +
        `${info.rerenders ? `, ${info.rerenders} re-render${info.rerenders === 1 ? '' : 's'} each, the compressed ones as JPEG` : ''}` +
        `${info.distorted ? ', a distorted copy each (distorted.jsonl)' : ''}, ` +
        `${info.size}×${info.size}, seed ${info.seed}) to ${flags.out} in ${seconds.toFixed(1)} s ` +
        `(${(info.images / seconds).toFixed(0)} images/s); manifest: ${flags.out}/manifest.jsonl`,
    );
    return info;
  } finally {
    bar.stop();
  }
}
