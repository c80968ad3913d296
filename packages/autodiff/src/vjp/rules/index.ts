/**
 * The gradient rules, one file per op family, in one registry: a rule takes a node and the gradients of its outputs
 * and returns the gradients of its inputs (undefined where none flows).
 */
import type { Rule } from '../context.js';
import { arithmeticRules } from './arithmetic.js';
import { linearRules } from './linear.js';
import { shapeRules } from './shape.js';
import { pointwiseRules } from './pointwise.js';
import { reducePoolRules } from './reduce-pool.js';
import { normalizationRules } from './normalization.js';

/** Every op the builder differentiates, by op type. */
export const RULES: Readonly<Record<string, Rule>> = {
  ...arithmeticRules,
  ...linearRules,
  ...shapeRules,
  ...pointwiseRules,
  ...reducePoolRules,
  ...normalizationRules,
};
