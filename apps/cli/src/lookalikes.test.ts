import type { PointPayload, SearchHit } from '@lookalike/core';
import { describe, expect, it } from 'vitest';
import { shareLine } from './lookalikes.js';

let ids = 0;
const hit = (labels?: Record<string, string>): SearchHit => ({
  id: String(ids++),
  score: 0.9,
  payload: { ...(labels ? { labels } : {}) } as PointPayload,
});

describe(shareLine.name, () => {
  it('counts the hits sharing the defect and the part and defect, out of those shown', () => {
    const hits = [
      hit({ part: 'gear', defect: 'crack' }),
      hit({ part: 'bolt', defect: 'crack' }),
      hit({ part: 'gear', defect: 'none' }),
      hit({ defect: 'crack' }), // no part: shares nothing, as in the audit
      hit(),
    ];
    expect(shareLine('robust', { part: 'gear', defect: 'crack' }, hits)).toBe(
      'robust tower: 2 of 5 share its defect (crack), 1 of 5 share part+defect (gear / crack).',
    );
  });
});
