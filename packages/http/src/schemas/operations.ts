/** Health and readiness. */
import { z } from 'zod';

export const healthSchema = z.object({ status: z.literal('ok') });

export const readinessSchema = z
  .object({
    status: z.enum(['ready', 'not ready']),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean(), reason: z.string().optional() })),
  })
  .meta({ id: 'Readiness' });
