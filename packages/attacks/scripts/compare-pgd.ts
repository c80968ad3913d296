/**
 * The TypeScript half of models/training/compare_pgd.py: runs our ℓ∞ PGD on a committed tower for the images and
 * settings in a JSON file and prints each query's final loss as JSON. The Python half runs PyTorch autograd PGD on
 * the same weights from the same random start and compares.
 *
 *   tsx --conditions=source packages/attacks/scripts/compare-pgd.ts <settings.json>
 */
import { readFile } from 'node:fs/promises';
import { pgdComparison, type ComparisonSettings } from '../src/compare.js';

const file = process.argv[2];
if (!file) throw new Error('usage: compare-pgd.ts <settings.json>');
const settings = JSON.parse(await readFile(file, 'utf8')) as ComparisonSettings;
console.log(JSON.stringify(await pgdComparison(settings)));
