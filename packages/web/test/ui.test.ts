import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { webRoot } from '../src/index.js';
import { formatDistance, formatDuration, formatEpsilon, formatScore } from '../public/js/format.js';
import { filterOf, formatSearchState, parseSearchState } from '../public/js/state.js';

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('webRoot', () => {
  it('holds the page and every asset it and its modules refer to', async () => {
    const html = await readFile(join(webRoot, 'index.html'), 'utf8');
    const refs = [...html.matchAll(/(?:src|href)="(\/[^"]*)"/g)].map((m) => m[1]!).filter((r) => r.includes('.'));
    expect(refs).toEqual(expect.arrayContaining(['/styles.css', '/js/app.js', '/favicon.svg']));
    for (const ref of refs) expect(existsSync(join(webRoot, ref)), ref).toBe(true);
    for (const file of (await files(webRoot)).filter((f) => f.endsWith('.js'))) {
      const source = await readFile(file, 'utf8');
      for (const [, spec] of source.matchAll(/^\s*(?:import|export)\s[^'"]*from\s+'(\.[^']+)'/gm)) {
        expect(existsSync(join(file, '..', spec!)), `${relative(webRoot, file)} imports ${spec}`).toBe(true);
      }
    }
  });

  it('needs nothing a strict CSP forbids and never writes API data as HTML', async () => {
    for (const file of await files(webRoot)) {
      const text = await readFile(file, 'utf8');
      const name = relative(webRoot, file);
      if (name.endsWith('.html')) {
        expect(text, name).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
        expect(text, name).not.toMatch(/<style|\sstyle=|\son[a-z]+=|javascript:/i);
        expect(text, name).not.toMatch(/https?:\/\//);
      }
      if (name.endsWith('.js')) {
        expect(text, name).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
        expect(text, name).not.toMatch(/https?:\/\//);
      }
    }
  });
});

describe(parseSearchState.name, () => {
  it('reads defaults from an empty query string', () => {
    expect(parseSearchState('')).toEqual({
      query: null,
      k: 12,
      encoder: 'robust',
      filters: { part: '', defect: '', color: '', material: '' },
      quality: 'any',
    });
  });

  it('round-trips a full state through the URL and leaves defaults out', () => {
    const state = parseSearchState(
      '?q=a+gear+with+a+crack&k=24&encoder=both&defect=crack&part=circuit%20board&quality=ok',
    );
    expect(state.query).toEqual({ kind: 'text', text: 'a gear with a crack' });
    expect(state.quality).toBe('ok');
    expect(parseSearchState(formatSearchState(state))).toEqual(state);
    expect(
      formatSearchState({ ...state, query: { kind: 'id', id: 'ab' }, k: 12, encoder: 'robust', quality: 'any' }),
    ).toBe('?id=ab&part=circuit+board&defect=crack');
  });

  it('prefers an id to a text to an upload, and falls back on bad values', () => {
    expect(parseSearchState('?upload=x.png&q=bolt&id=ab').query).toEqual({ kind: 'id', id: 'ab' });
    expect(parseSearchState('?upload=x.png').query).toEqual({ kind: 'upload', name: 'x.png' });
    const bad = parseSearchState('?k=500&encoder=fast&q=%20%20&quality=blurry');
    expect([bad.k, bad.encoder, bad.query, bad.quality]).toEqual([12, 'robust', null, 'any']);
  });
});

describe(filterOf.name, () => {
  it('turns chosen labels into must-match conditions, and nothing chosen into no filter', () => {
    expect(filterOf({ part: 'gear', defect: '', color: 'red', material: '' })).toEqual({
      must: [
        { field: 'labels.part', match: 'gear' },
        { field: 'labels.color', match: 'red' },
      ],
    });
    expect(filterOf({ part: '', defect: '', color: '', material: '' })).toBeUndefined();
  });
});

describe('format', () => {
  it('writes budgets as n/255, scores with three decimals, distances with four and durations in the largest unit', () => {
    expect([0, 1 / 255, 8 / 255, 0.03].map(formatEpsilon)).toEqual(['0', '1/255', '8/255', '0.03']);
    expect(formatScore(0.98765)).toBe('0.988');
    expect([0, 0.00002, 0.02, 0.012345].map(formatDistance)).toEqual(['0.0000', '< 0.0001', '0.0200', '0.0123']);
    expect(formatDuration('2025-01-01T03:00:00Z', '2025-01-01T03:00:42Z')).toBe('42 s');
    expect(formatDuration('2025-01-01T03:00:00Z', '2025-01-01T04:05:00Z')).toBe('1 h 5 min');
  });
});
