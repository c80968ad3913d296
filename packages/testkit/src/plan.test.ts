import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromiumNotFoundError, findChromium } from './index.js';
import { planSetup, type SystemTool } from './plan.js';

let dir: string;
let fakeBinary: string;
let notExecutable: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'testkit-plan-'));
  // A real executable file stands where CHROMIUM_PATH points: finding it only checks that it can be executed.
  fakeBinary = join(dir, 'chrome');
  await writeFile(fakeBinary, '#!/bin/sh\necho "Chromium 1.0"\n');
  await chmod(fakeBinary, 0o755);
  notExecutable = join(dir, 'readme.txt');
  await writeFile(notExecutable, 'not a browser');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe(findChromium.name, () => {
  it('uses CHROMIUM_PATH when it names an executable, whatever the candidates', () => {
    expect(findChromium({ CHROMIUM_PATH: fakeBinary }, [])).toBe(fakeBinary);
  });

  it('refuses a CHROMIUM_PATH that is not executable instead of looking elsewhere', () => {
    expect(() => findChromium({ CHROMIUM_PATH: notExecutable }, [fakeBinary])).toThrow(ChromiumNotFoundError);
    expect(() => findChromium({ CHROMIUM_PATH: join(dir, 'missing') })).toThrow(/not an executable file/);
  });

  it('finds the first executable candidate when CHROMIUM_PATH is unset or blank', () => {
    expect(findChromium({}, [join(dir, 'missing'), notExecutable, fakeBinary])).toBe(fakeBinary);
    expect(findChromium({ CHROMIUM_PATH: ' ' }, [fakeBinary])).toBe(fakeBinary);
    expect(findChromium({}, [join(dir, 'missing'), notExecutable])).toBeUndefined();
  });
});

describe(planSetup.name, () => {
  const tool = (name: string, at: string | undefined): SystemTool => ({
    name,
    find: () => at,
    aptPackages: [name.toLowerCase()],
    hint: `install ${name}`,
  });

  it('installs nothing when every tool is there', () => {
    expect(planSetup([tool('Chromium', '/x/chromium')], { isRoot: true, hasAptGet: true })).toEqual({
      found: [{ name: 'Chromium', at: '/x/chromium' }],
      install: [],
    });
  });

  it('plans an apt-get install of the missing tools only for root with apt-get', () => {
    const plan = planSetup([tool('Chromium', undefined), tool('Compose', '/x/c'), tool('Other', undefined)], {
      isRoot: true,
      hasAptGet: true,
    });
    expect(plan.install.map((t) => t.name)).toEqual(['Chromium', 'Other']);
    expect(plan.missing).toBeUndefined();
  });

  it('otherwise says in one line what to install, and installs nothing', () => {
    for (const can of [
      { isRoot: false, hasAptGet: true },
      { isRoot: true, hasAptGet: false },
      { isRoot: false, hasAptGet: false },
    ]) {
      const plan = planSetup([tool('Chromium', undefined), tool('Compose', undefined)], can);
      expect(plan.install).toEqual([]);
      expect(plan.missing).toBe(
        'The tests need Chromium and Compose, which this machine lacks: install Chromium; install Compose; ' +
          'then run npm test again.',
      );
    }
  });
});
