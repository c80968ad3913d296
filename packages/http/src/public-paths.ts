import { realpathSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';
import { isUrl, type JobStatus, type PointPayload } from '@lookalike/core';
import { isRunStatus, type IngestFailure, type RunStatus } from '@lookalike/ingest';

/** A folder whose files are named relative to it in responses, and the prefix the relative name gets. */
interface Base {
  dir: string;
  prefix: string;
}

/** `dir` resolved, and its real path where that differs (a root that is itself a link), longest first. */
function spellings(dir: string): string[] {
  const resolved = resolve(dir);
  let real: string | undefined;
  try {
    real = realpathSync(resolved);
  } catch {
    real = undefined;
  }
  return real && real !== resolved ? [resolved, real] : [resolved];
}

/**
 * What the API says about server paths. The store keeps each image's absolute path (the server reads the original
 * from it); responses name it relative to its ingest root (`catalog/images/a.png`), uploads as `upload:<file>`, and
 * a path under no root by its file name only, so that no response reveals where anything lies on the server.
 */
export class PublicPaths {
  private readonly bases: Base[];
  /** Folders also scrubbed from free-text reasons (DATA_DIR: the store's own errors may name it). */
  private readonly scrubbed: Base[];

  constructor(options: { roots: readonly string[]; uploadsDir: string; dataDir: string }) {
    const bases = [
      ...spellings(options.uploadsDir).map((dir) => ({ dir, prefix: 'upload:' })),
      ...options.roots.flatMap((root) => spellings(root).map((dir) => ({ dir, prefix: '' }))),
    ];
    // The deepest folder names a path first: uploads lie under DATA_DIR, the default ingest root.
    this.bases = bases.sort((a, b) => b.dir.length - a.dir.length);
    this.scrubbed = [...this.bases, ...spellings(options.dataDir).map((dir) => ({ dir, prefix: '' }))].sort(
      (a, b) => b.dir.length - a.dir.length,
    );
  }

  /** A payload `source` or failure `location` as a response shows it; URLs and relative names are kept. */
  source(location: string): string {
    if (isUrl(location) || !isAbsolute(location)) return location;
    for (const { dir, prefix } of this.bases) {
      const rel = relative(dir, location);
      if (rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))
        return prefix + rel.split(sep).join('/');
    }
    return basename(location);
  }

  /** `text` with every server folder this API knows of cut out of the paths it contains. */
  text(text: string): string {
    let out = text;
    for (const { dir, prefix } of this.scrubbed) out = out.split(`${dir}${sep}`).join(prefix);
    return out;
  }

  /** The payload with its source as {@link source} shows it. */
  payload<P extends Pick<PointPayload, 'source'>>(payload: P): P {
    return { ...payload, source: this.source(payload.source) };
  }

  /** A stored image as lists show it: its id, its payload as {@link payload} shows it, and its URLs. */
  image<P extends Pick<PointPayload, 'source'>>(
    id: string,
    payload: P,
  ): { id: string; payload: P; thumbnailUrl: string; url: string } {
    return { id, payload: this.payload(payload), thumbnailUrl: `/v1/images/${id}/thumbnail`, url: `/v1/images/${id}` };
  }

  /** A job's status with the locations and reasons of its failures freed of server paths. */
  jobStatus(status: RunStatus | JobStatus): RunStatus | JobStatus {
    const failure = (f: IngestFailure): IngestFailure => ({
      ...f,
      location: this.source(f.location),
      reason: this.text(f.reason),
    });
    const failedReason = status.failedReason === undefined ? {} : { failedReason: this.text(status.failedReason) };
    if (isRunStatus(status))
      return {
        ...status,
        ...failedReason,
        failed: status.failed.map(failure),
        duplicates: status.duplicates.map((d) => ({ ...d, location: this.source(d.location) })),
        suspicious: status.suspicious.map((c) => ({ ...c, location: this.source(c.location) })),
        lowQuality: status.lowQuality.map((q) => ({ ...q, location: this.source(q.location) })),
        batchFailures: status.batchFailures.map((b) => ({ ...b, reason: this.text(b.reason) })),
        manifestProblems: status.manifestProblems.map((p) => ({ ...p, reason: this.text(p.reason) })),
      };
    const result = status.result as
      { failed?: unknown; duplicates?: unknown; suspicious?: unknown; lowQuality?: unknown } | null | undefined;
    // An ingest batch's result (an upload's job): its failures in the shape ingest reports them.
    const failed =
      result !== null &&
      typeof result === 'object' &&
      Array.isArray(result.failed) &&
      result.failed.every(
        (f: Partial<IngestFailure> | null) => typeof f?.location === 'string' && typeof f.reason === 'string',
      )
        ? (result.failed as IngestFailure[])
        : undefined;
    // Its near-duplicate joins, suspicious captions and low-quality images, each with a location.
    const located = (list: unknown): { location?: unknown }[] | undefined =>
      Array.isArray(list) ? (list as { location?: unknown }[]) : undefined;
    const relocated = (list: { location?: unknown }[]) =>
      list.map((d) => ({ ...d, location: typeof d.location === 'string' ? this.source(d.location) : '' }));
    const isObject = result !== null && typeof result === 'object';
    const joins = isObject ? located(result.duplicates) : undefined;
    const suspicious = isObject ? located(result.suspicious) : undefined;
    const lowQuality = isObject ? located(result.lowQuality) : undefined;
    if (!failed && !joins && !suspicious && !lowQuality) return { ...status, ...failedReason };
    return {
      ...status,
      ...failedReason,
      result: {
        ...result,
        ...(failed ? { failed: failed.map(failure) } : {}),
        ...(joins ? { duplicates: relocated(joins) } : {}),
        ...(suspicious ? { suspicious: relocated(suspicious) } : {}),
        ...(lowQuality ? { lowQuality: relocated(lowQuality) } : {}),
      },
    };
  }
}
