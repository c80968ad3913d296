import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatIssues, toValidationIssues } from './issues.js';

describe(formatIssues.name, () => {
  it('lists every zod issue as path: message, a whole-value problem as its message alone', () => {
    const schema = z.object({ filter: z.object({ must: z.array(z.object({ field: z.string() })) }), k: z.number() });
    const result = schema.safeParse({ filter: { must: [{ field: 3 }] }, k: 'ten' });
    expect(result.success).toBe(false);
    const issues = toValidationIssues(result.error!.issues);
    expect(issues.map((i) => i.path)).toEqual(['filter.must.0.field', 'k']);
    const line = formatIssues(issues);
    expect(line).toMatch(/^filter\.must\.0\.field: .+; k: .+$/);
    expect(formatIssues(result.error!.issues)).toBe(line);
    const root = z.string().safeParse(5);
    expect(formatIssues(root.error!.issues)).toBe(root.error!.issues[0]!.message);
  });
});
