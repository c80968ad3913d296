#!/usr/bin/env node
// The `lookalike` command that npm links into node_modules/.bin. It exists before the first build (npm links a
// workspace's bin at install time only when the file is there), and runs the built CLI, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('lookalike is not built yet: run `npm run build` (or `npm run demo`) in the repository first.');
  process.exit(1);
}
await import(main.href);
