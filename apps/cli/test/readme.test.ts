import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

// Every command the READMEs show, checked against this clone as a new user would type it (`npm test` runs after
// `npm ci` and the build): `npx lookalike …` resolves through the bin npm linked at install time and knows every
// subcommand and flag shown; every `npm run X` names a script, and every flag shown for a benchmark is one it parses;
// every `node path` exists. Then the ingest flow runs for real through `npx`, in the README's order and with its
// flags, at test scale (`--count 8`: the README's 1,000 images take minutes). What needs a Docker engine (`docker
// compose up`, …) cannot run here; apps/worker/test/deploy.test.ts runs `docker compose config` on the compose file.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const READMES = [
  'README.md',
  'bench/README.md',
  'models/README.md',
  ...readdirSync(join(root, 'packages'))
    .map((p) => `packages/${p}/README.md`)
    .filter((p) => existsSync(join(root, p))),
];

/** Shell lines of a markdown file: fenced `sh` blocks (continuations joined, comments cut) and inline code. */
export function commandsOf(markdown: string): string[] {
  const out: string[] = [];
  for (const block of markdown.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const text = line.replace(/\s+#.*$/, '').trim();
      if (text && !text.startsWith('#')) out.push(...text.split(/\s*&&\s*/));
    }
  }
  for (const m of markdown.matchAll(/`((?:npx lookalike|npm run|node apps\/)[^`]*)`/g)) out.push(m[1]!.trim());
  return out;
}

/** `[--a 1] [--b x|y]` → the flags shown, optional groups included. */
const flagsOf = (args: string): string[] => [...args.matchAll(/(?:^|[\s[])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!);

const commands = [...new Set(READMES.flatMap((f) => commandsOf(readFileSync(join(root, f), 'utf8'))))];
const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
  .scripts;

/**
 * `npx lookalike …` as typed in the repository, but with `cwd` as the working folder, so the relative paths the
 * README shows (data/catalog) land in a temp folder: `npm exec --prefix <repo>` resolves the same linked bin.
 */
async function npx(cwd: string, ...args: string[]) {
  return run('npm', ['exec', '--prefix', root, '--no-install', '--', 'lookalike', ...args], {
    cwd,
    // The models folder is the repository's, as for a user in the repository (MODELS_DIR defaults to ./models).
    env: { ...process.env, LOG_LEVEL: 'warn', MODELS_DIR: join(root, 'models') },
    maxBuffer: 16 * 1024 * 1024,
  });
}

describe('the READMEs’ commands', () => {
  it('finds the commands it checks (the parser reads the README)', () => {
    expect(commands).toContain('npm ci');
    expect(commands).toContain('npm test');
    expect(commands.filter((c) => c.startsWith('npx lookalike ')).length).toBeGreaterThanOrEqual(5);
    expect(commands.filter((c) => c.startsWith('npm run bench')).length).toBeGreaterThanOrEqual(6);
  });

  it('npx lookalike resolves to the CLI through the bin npm linked at install time', () => {
    const bin = join(root, 'node_modules/.bin/lookalike');
    expect(existsSync(bin), 'node_modules/.bin/lookalike is missing: npm did not link the CLI').toBe(true);
    expect(realpathSync(bin)).toBe(realpathSync(join(root, 'apps/cli/bin/lookalike.js')));
  });

  const lookalike = commands.filter((c) => c.startsWith('npx lookalike '));
  it.each(lookalike)('%s: the subcommand and every flag shown exist', async (command) => {
    const [sub, ...rest] = command.slice('npx lookalike '.length).split(/\s+/);
    const { stdout } = await npx(root, sub!, '--help');
    expect(stdout).toContain(`Usage: lookalike ${sub}`);
    for (const flag of flagsOf(rest.join(' '))) expect(stdout, `${command}: ${flag}`).toMatch(new RegExp(`${flag}\\b`));
  });

  const npmRuns = commands.filter((c) => /^npm (run|test)\b/.test(c));
  it.each(npmRuns)('%s: the script exists and parses every flag shown', (command) => {
    const m = /^npm (?:run (\S+)|(test))\s*(?:\[?--\s+(.*))?/.exec(command)!;
    const name = m[1] ?? m[2]!;
    expect(scripts[name], `package.json has no script "${name}"`).toBeDefined();
    const flags = flagsOf(m[3] ?? '');
    if (!flags.length) return;
    const file = /(bench\/[\w-]+\.ts)/.exec(scripts[name]!)?.[1];
    expect(file, `${command}: flags shown for a script that is not a benchmark`).toBeDefined();
    const source = readFileSync(join(root, file!), 'utf8');
    const block = /parseArgs\(\{\s*options:\s*\{([\s\S]*?)\n\s*\},\n/.exec(source)?.[1] ?? '';
    const declared = new Set([...block.matchAll(/^\s*'?([a-z][a-z0-9-]*)'?: \{/gm)].map((d) => `--${d[1]}`));
    for (const flag of flags) expect(declared, `${command}: ${file} does not parse ${flag}`).toContain(flag);
  });

  const nodes = commands.filter((c) => c.startsWith('node '));
  it.each(nodes)('%s: the entry point exists after the build', (command) => {
    expect(existsSync(join(root, command.split(/\s+/)[1]!))).toBe(true);
  });

  it('runs the README’s synth → ingest → jobs flow through npx, in its order, at test scale', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'readme-flow-'));
    dirs.push(cwd);
    const synth = lookalike.find((c) => c.startsWith('npx lookalike synth '))!;
    const ingest = lookalike.find((c) => c.startsWith('npx lookalike ingest '))!;
    expect(lookalike.indexOf(synth), 'the README must show synth before the ingest of its catalog').toBeLessThan(
      lookalike.indexOf(ingest),
    );
    // Optional groups ([--format jpeg]) are left out, as a user copying the required part would.
    const synthArgs = synth
      .replace(/\[[^\]]*\]/g, '')
      .split(/\s+/)
      .slice(2)
      .filter(Boolean);
    const count = synthArgs.indexOf('--count');
    synthArgs[count + 1] = '8';
    await npx(cwd, ...synthArgs, '--size', '64');
    const ingested = await npx(cwd, ...ingest.split(/\s+/).slice(2));
    expect(ingested.stdout).toMatch(
      /Ingested (\d+) new images \(0 already present, 0 failed\) of \1 .* holds \1 images/,
    );
    const manifest = (await readFile(join(cwd, 'data/catalog/manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(manifest).toHaveLength(8);
    // As the README's user runs it: with REDIS_URL the queue counts, without it the reason there are none.
    const jobs = await npx(cwd, 'jobs');
    if (process.env.REDIS_URL) expect(JSON.parse(jobs.stdout)).toHaveProperty('ingest');
    else expect(jobs.stdout).toMatch(/^No REDIS_URL: .*no shared queue to count/);
  });
});
