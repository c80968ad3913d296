// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from 'vitest';
import { createQueryBar } from '../public/js/search-controls.js';
import { idleOutput, imagePreview, resultsView } from '../public/js/search-view.js';
import { parseSearchState } from '../public/js/state.js';

type Response = Parameters<typeof resultsView>[0][number];

const hit = (id: string, score: number, labels: Record<string, string> = {}) => ({
  id,
  score,
  payload: { caption: `item ${id}`, labels, width: 96, height: 96, format: 'png', source: `/c/${id}.png` },
});
const response = (encoder: 'robust' | 'clean', ids: string[], tookMs = 3): Response =>
  ({ encoder, k: ids.length, tookMs, hits: ids.map((id, i) => hit(id, 1 - i / 10)) }) as unknown as Response;
const mount = (content: unknown) => {
  const root = document.createElement('div');
  root.append(...[content].flat(2).filter((n): n is Node => n instanceof Node));
  return root;
};
const texts = (root: Element, selector: string) => [...root.querySelectorAll(selector)].map((e) => e.textContent);

afterEach(() => document.body.replaceChildren());

describe('resultsView', () => {
  it('shows one tower as a ranked grid that searches from a clicked hit', () => {
    const clicked: string[] = [];
    const view = resultsView([response('robust', ['a', 'b', 'c'], 7)], {
      filtered: false,
      onHit: (id) => clicked.push(id),
      onClearFilters: () => undefined,
    });
    expect(view.status).toBe('3 lookalikes · robust 7 ms');
    const root = mount(view.content);
    expect(texts(root, '.rank')).toEqual(['#1', '#2', '#3']);
    expect(texts(root, '.score')).toEqual(['1.000', '0.900', '0.800']);
    expect(root.querySelector('.xref')).toBeNull();
    root.querySelector<HTMLButtonElement>('.hit-button[data-id="b"]')!.click();
    expect(clicked).toEqual(['b']);
  });

  it('compares two towers: hits shared, whether top-1 agrees, and each hit’s rank in the other tower', () => {
    const view = resultsView([response('robust', ['a', 'b', 'c']), response('clean', ['c', 'a', 'd'])], {
      filtered: false,
      onHit: () => undefined,
      onClearFilters: () => undefined,
    });
    expect(view.status).toBe('3 lookalikes per tower · robust 3 ms · clean 3 ms');
    const root = mount(view.content);
    expect(root.querySelector('.agreement')!.textContent).toBe('2 of 3 hits shared by both towers · top-1 differs');
    const [robust, clean] = [...root.querySelectorAll('.column')];
    expect(texts(robust!, '.xref')).toEqual(['clean #2', 'not in clean', 'clean #1']);
    expect(texts(clean!, '.xref')).toEqual(['robust #3', 'robust #1', 'not in robust']);
    expect(clean!.querySelector('.xref')!.className).toBe('xref');
    expect(clean!.querySelectorAll('.xref-miss')).toHaveLength(1);
  });

  it('says nothing matched, and offers to clear the filters only when there are some', () => {
    let cleared = 0;
    const actions = { onHit: () => undefined, onClearFilters: () => (cleared += 1) };
    const plain = mount(resultsView([response('clean', [])], { ...actions, filtered: false }).content);
    expect(plain.textContent).toBe('No images match.');
    const filtered = mount(resultsView([response('clean', [])], { ...actions, filtered: true }).content);
    filtered.querySelector('button')!.click();
    expect(cleared).toBe(1);
  });

  it('marks a defect label, leaves out empty ones, and never parses a caption as markup', () => {
    const payload = {
      caption: '<img src=x onerror=alert(1)>',
      labels: { part: 'gear', defect: 'crack', color: '' },
      width: 96,
      height: 96,
      format: 'png',
      source: '/c/x.png',
    };
    const root = mount(imagePreview('f'.repeat(64), payload as never));
    expect(root.querySelector('.preview-caption')!.textContent).toBe(payload.caption);
    expect(root.querySelectorAll('img')).toHaveLength(1);
    expect(texts(root, '.label')).toEqual(['gear', 'crack']);
    expect(root.querySelector('.label-defect')!.classList.contains('is-defect')).toBe(true);
    expect(root.querySelector('code')!.textContent).toBe(`${'f'.repeat(12)}…`);
  });

  it('offers example descriptions before any query', () => {
    const tried: string[] = [];
    const root = mount(idleOutput((text) => tried.push(text)));
    root.querySelector<HTMLButtonElement>('.chip-button')!.click();
    expect(tried).toEqual(['a gear with a crack']);
  });
});

describe('createQueryBar', () => {
  const setup = (search: string) => {
    let state = parseSearchState(search);
    const events: unknown[] = [];
    const lifetime = new AbortController();
    const bar = createQueryBar(
      {
        onFile: (file) => events.push({ file: file.name }),
        onText: (text) => events.push({ text }),
        onChange: (patch) => {
          events.push(patch);
          state = { ...state, ...patch };
        },
        current: () => state,
      },
      lifetime.signal,
    );
    document.body.append(bar.element);
    bar.sync(state);
    return { bar, events, lifetime, select: (id: string) => document.querySelector<HTMLSelectElement>(`#${id}`)! };
  };

  it('shows the state it is given, a filter value not among the facets included', () => {
    const { bar, select } = setup('?q=a+bolt&k=7&encoder=both&defect=crack');
    expect(document.querySelector<HTMLInputElement>('#text-query')!.value).toBe('a bolt');
    expect(select('k').value).toBe('7');
    expect(document.querySelector<HTMLInputElement>('input[value="both"]')!.checked).toBe(true);
    expect(select('filter-defect').value).toBe('crack');
    bar.fillFacets({ fields: { 'labels.defect': ['crack', 'dent'] } });
    expect([...select('filter-defect').options].map((o) => o.value)).toEqual(['', 'crack', 'dent']);
  });

  it('reports a submitted description, a changed filter built on the current ones, and `/` to type until the page ends', () => {
    const { bar, events, select, lifetime } = setup('?q=x&part=gear');
    bar.fillFacets({ fields: { 'labels.defect': ['dent'] } });
    document.querySelector<HTMLInputElement>('#text-query')!.value = '  a gear with a crack ';
    document.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    const defect = select('filter-defect');
    defect.value = 'dent';
    defect.dispatchEvent(new Event('change'));
    expect(events[0]).toEqual({ text: 'a gear with a crack' });
    expect(events[1]).toMatchObject({ filters: { part: 'gear', defect: 'dent' } });
    const text = document.querySelector<HTMLInputElement>('#text-query')!;
    text.blur();
    document.dispatchEvent(new KeyboardEvent('keydown', { key: '/', cancelable: true }));
    expect(document.activeElement).toBe(text);
    text.blur();
    lifetime.abort();
    document.dispatchEvent(new KeyboardEvent('keydown', { key: '/', cancelable: true }));
    expect(document.activeElement).not.toBe(text);
  });
});
