import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelError, formatIssues } from '@lookalike/core';
import {
  modelManifestSchema,
  type ImageModelManifest,
  type ModelManifest,
  type QualityModelManifest,
  type TextModelManifest,
} from './manifest.js';

interface Entry {
  dir: string;
  manifest: ModelManifest;
}

/** sha256 of a file, streamed so large checkpoints never sit in memory whole. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The models available on this machine: every `<root>/<folder>/manifest.json`. Manifests are validated when the
 * registry opens; a broken one does not hide the others, but asking for it raises a {@link ModelError} that says what
 * is wrong. File checksums are verified on first use of a model.
 */
export class ModelRegistry {
  private readonly verified = new Map<string, Promise<void>>();

  private constructor(
    /** Absolute path of the models folder. */
    readonly root: string,
    private readonly entries: ReadonlyMap<string, Entry>,
    /** Manifests that could not be read, by folder, with the reason. */
    readonly problems: ReadonlyMap<string, string>,
  ) {}

  /** Reads every manifest under `root`. Throws a {@link ModelError} when `root` is not a readable folder. */
  static async open(root: string): Promise<ModelRegistry> {
    const absolute = path.resolve(root);
    let folders: string[];
    try {
      folders = (await readdir(absolute, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch (error) {
      throw new ModelError(`The models folder ${absolute} cannot be read; set MODELS_DIR to the folder holding them.`, {
        cause: error,
      });
    }
    const entries = new Map<string, Entry>();
    const problems = new Map<string, string>();
    for (const folder of folders.sort()) {
      const dir = path.join(absolute, folder);
      let raw: string;
      try {
        raw = await readFile(path.join(dir, 'manifest.json'), 'utf8');
      } catch {
        continue; // Not a model folder (training scripts, fixtures, …).
      }
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch (error) {
        problems.set(folder, `manifest.json is not valid JSON: ${(error as Error).message}`);
        continue;
      }
      const parsed = modelManifestSchema.safeParse(json);
      if (!parsed.success) {
        problems.set(folder, formatIssues(parsed.error.issues));
        continue;
      }
      const existing = entries.get(parsed.data.id);
      if (existing) {
        problems.set(folder, `model id ${parsed.data.id} is also used by ${path.basename(existing.dir)}`);
        continue;
      }
      entries.set(parsed.data.id, { dir, manifest: parsed.data });
    }
    return new ModelRegistry(absolute, entries, problems);
  }

  /** Every valid manifest, by id. */
  list(): ModelManifest[] {
    return [...this.entries.values()].map((e) => e.manifest);
  }

  /** The manifest of an image tower; throws if `id` is unknown, broken, or not an image tower. */
  image(id: string): ImageModelManifest {
    const manifest = this.entry(id).manifest;
    if (manifest.role === 'text') throw new ModelError(`Model ${id} is a text tower, not an image tower.`);
    if (manifest.role === 'quality') throw new ModelError(`Model ${id} is a quality model, not an image tower.`);
    return manifest;
  }

  /** The manifest of a text tower; throws if `id` is unknown, broken, or not a text tower. */
  text(id: string): TextModelManifest {
    const manifest = this.entry(id).manifest;
    if (manifest.role === 'quality') throw new ModelError(`Model ${id} is a quality model, not a text tower.`);
    if (manifest.role !== 'text') throw new ModelError(`Model ${id} is an image tower, not a text tower.`);
    return manifest;
  }

  /** The manifest of a quality model; throws if `id` is unknown, broken, or not a quality model. */
  quality(id: string): QualityModelManifest {
    const manifest = this.entry(id).manifest;
    if (manifest.role === 'text') throw new ModelError(`Model ${id} is a text tower, not a quality model.`);
    if (manifest.role !== 'quality') throw new ModelError(`Model ${id} is an image tower, not a quality model.`);
    return manifest;
  }

  /**
   * The quality model made from image tower `tower`: the one manifest of role `quality` whose `backbone` is `tower`,
   * or, when there is none or more than one, a sentence saying so (naming them).
   */
  findQuality(tower: string): QualityModelManifest | string {
    const heads = this.list().filter((m): m is QualityModelManifest => m.role === 'quality' && m.backbone === tower);
    if (heads.length === 1) return heads[0]!;
    if (heads.length === 0)
      return (
        `No quality model in ${this.root} was made from the image tower ${tower}; train one ` +
        '(models/training/train_quality.py) or set QUALITY=off.'
      );
    return `Several quality models in ${this.root} were made from the image tower ${tower} (${heads.map((h) => h.id).join(', ')}); keep one.`;
  }

  /** {@link findQuality}, throwing a {@link ModelError} when there is no single one. */
  qualityFor(tower: string): QualityModelManifest {
    const found = this.findQuality(tower);
    if (typeof found === 'string') throw new ModelError(found);
    return found;
  }

  /** Absolute path of one of a model's files. */
  file(id: string, ref: { path: string }): string {
    return path.join(this.entry(id).dir, ref.path);
  }

  /**
   * Checks every file of model `id` against the sha256 in its manifest (once per registry; later calls reuse the
   * result). Throws a {@link ModelError} naming the file on a mismatch or a missing file.
   */
  verify(id: string): Promise<void> {
    let pending = this.verified.get(id);
    if (!pending) {
      pending = this.verifyFiles(id);
      this.verified.set(id, pending);
      pending.catch(() => this.verified.delete(id));
    }
    return pending;
  }

  private async verifyFiles(id: string): Promise<void> {
    const { dir, manifest } = this.entry(id);
    for (const ref of Object.values(manifest.files)) {
      const file = path.join(dir, ref.path);
      try {
        await stat(file);
      } catch (error) {
        throw new ModelError(`Model ${id} is missing its file ${ref.path} (looked in ${dir}).`, { cause: error });
      }
      const actual = await sha256File(file);
      if (actual !== ref.sha256) {
        throw new ModelError(
          `Model ${id}: ${ref.path} has sha256 ${actual.slice(0, 12)}…, but the manifest says ${ref.sha256.slice(0, 12)}…; ` +
            'the file is corrupt or was replaced without re-exporting the manifest.',
          { details: { model: id, file: ref.path, expected: ref.sha256, actual } },
        );
      }
    }
  }

  private entry(id: string): Entry {
    const entry = this.entries.get(id);
    if (entry) return entry;
    const problem = [...this.problems.entries()].find(([folder]) => folder === id)?.[1];
    if (problem) throw new ModelError(`Model ${id} has an invalid manifest: ${problem}`);
    const known = [...this.entries.keys()].join(', ') || 'none';
    throw new ModelError(`No model with id ${id} in ${this.root} (available: ${known}).`);
  }
}
