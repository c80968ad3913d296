/**
 * Finished audits on disk: `<dir>/<id>/audit.json`, `report.html` and `summary.json` (what listing reads, so a list
 * never parses whole audits). All are written into a hidden
 * temporary folder that is renamed into place, so a reader (or a crash) never sees half an audit.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AuditRepository, AuditResult, AuditSummary } from '@lookalike/core';
import { toSummary } from './report.js';

const ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** An {@link AuditRepository} in a folder. */
export class FileAuditStore implements AuditRepository {
  constructor(readonly dir: string) {}

  /** Writes an audit whole; an audit with this id already stored is left as it is (returns false). */
  async save(result: AuditResult, html: string): Promise<boolean> {
    const final = this.folder(result.id);
    if (await this.get(result.id)) return false;
    await mkdir(this.dir, { recursive: true });
    const tmp = path.join(this.dir, `.tmp-${result.id}-${process.pid}-${Date.now()}`);
    await mkdir(tmp);
    try {
      await writeFile(path.join(tmp, 'audit.json'), JSON.stringify(result));
      await writeFile(path.join(tmp, 'report.html'), html);
      await writeFile(path.join(tmp, 'summary.json'), JSON.stringify(toSummary(result)));
      await rename(tmp, final);
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      // Another worker stored the same audit first: theirs stands.
      if ((error as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (error as NodeJS.ErrnoException).code === 'EEXIST')
        return false;
      throw error;
    }
    return true;
  }

  async list(options: { limit?: number } = {}): Promise<AuditSummary[]> {
    let ids: string[] = [];
    try {
      ids = (await readdir(this.dir, { withFileTypes: true }))
        .filter((d) => d.isDirectory() && !d.name.startsWith('.') && ID.test(d.name))
        .map((d) => d.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const summaries = await Promise.all(
      ids.map(async (id) => {
        try {
          return JSON.parse(await readFile(path.join(this.folder(id), 'summary.json'), 'utf8')) as AuditSummary;
        } catch {
          return undefined; // Not an audit folder.
        }
      }),
    );
    const all = summaries
      .filter((s): s is AuditSummary => s !== undefined)
      .sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    return options.limit === undefined ? all : all.slice(0, options.limit);
  }

  async get(id: string): Promise<AuditResult | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(path.join(this.folder(id), 'audit.json'), 'utf8')) as AuditResult;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async report(id: string): Promise<string | undefined> {
    if (!ID.test(id)) return undefined;
    try {
      return await readFile(path.join(this.folder(id), 'report.html'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  private folder(id: string): string {
    if (!ID.test(id)) throw new RangeError(`not an audit id: ${id}`);
    return path.join(this.dir, id);
  }
}
