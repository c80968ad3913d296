#!/usr/bin/env node
// The test suite's setup step, run by `npm test` before vitest: make sure the system programs the tests drive are
// there (Chromium for the web UI and report tests, docker compose for the deployment test). Found: one line saying
// which. Missing, and this process may install system packages (root, with apt-get): install Debian's packages.
// Missing otherwise: one line saying what to install, and exit 1.
import { execFileSync, spawnSync } from 'node:child_process';
import { ChromiumNotFoundError, findChromium, findCompose, INSTALL_HINT } from './index.js';
import { planSetup, type SystemTool } from './plan.js';

const TOOLS: SystemTool[] = [
  {
    name: 'Chromium',
    find: () => findChromium(process.env),
    aptPackages: ['chromium', 'fonts-dejavu-core'],
    hint: INSTALL_HINT,
  },
  {
    name: 'docker compose',
    find: () => findCompose()?.join(' '),
    aptPackages: ['docker-compose'],
    hint: "install docker compose (Debian's docker-compose, or Docker's compose plugin) to check docker-compose.yml",
  },
];

function describe(tool: SystemTool, at: string): string {
  if (tool.name !== 'Chromium') return `${tool.name} (${at})`;
  try {
    const version = execFileSync(at, ['--version'], {
      encoding: 'utf8',
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return `${version.trim()} (${at})`;
  } catch {
    return `Chromium (${at})`;
  }
}

function aptGet(args: string[]): boolean {
  const result = spawnSync('apt-get', args, {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return result.status === 0;
}

function main(): number {
  let plan;
  try {
    plan = planSetup(TOOLS, {
      isRoot: process.getuid?.() === 0,
      hasAptGet: spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0,
    });
  } catch (error) {
    if (error instanceof ChromiumNotFoundError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  if (plan.missing) {
    console.error(plan.missing);
    return 1;
  }
  if (plan.install.length) {
    const packages = plan.install.flatMap((t) => t.aptPackages);
    console.log(`Test setup: installing ${packages.join(', ')} with apt-get (once; the tests drive them).`);
    if (!aptGet(['update', '-qq']) || !aptGet(['install', '-y', '-qq', '--no-install-recommends', ...packages])) {
      console.error(`Test setup: apt-get could not install ${packages.join(', ')} (see above).`);
      return 1;
    }
  }
  const lines: string[] = [];
  for (const tool of TOOLS) {
    const at = tool.find();
    if (!at) {
      console.error(`Test setup: ${tool.name} is still missing after the install: ${tool.hint}.`);
      return 1;
    }
    lines.push(describe(tool, at));
  }
  console.log(`Test setup: ${lines.join(', ')}.`);
  return 0;
}

process.exitCode = main();
