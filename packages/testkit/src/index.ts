import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Where a Chromium is looked for, in this order, when `CHROMIUM_PATH` is not set (Debian's and Ubuntu's names first). */
export const CHROMIUM_CANDIDATES: readonly string[] = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/lib/chromium/chromium',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
];

/**
 * Flags for a headless Chromium on a build machine: no sandbox (tests run as root), no GPU, and none of the
 * background connections (updates, sync, safe browsing) that a closed network refuses many times a second.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** What the browser tests need and how to get it, in one line. */
export const INSTALL_HINT =
  "install Debian's chromium (`apt-get install chromium`, as root) or set CHROMIUM_PATH to a Chromium or Chrome binary";

/** No usable Chromium: the message says where it looked and what to install. */
export class ChromiumNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChromiumNotFoundError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Chromium binary to drive: `CHROMIUM_PATH` when set (and then it must be executable: a wrong explicit setting is
 * an error, not a reason to try other places), else the first executable of {@link CHROMIUM_CANDIDATES}, else
 * `undefined`. `candidates` replaces the list (tests).
 */
export function findChromium(
  env: { CHROMIUM_PATH?: string | undefined },
  candidates: readonly string[] = CHROMIUM_CANDIDATES,
): string | undefined {
  const explicit = env.CHROMIUM_PATH?.trim();
  if (explicit) {
    if (!executable(explicit))
      throw new ChromiumNotFoundError(
        `CHROMIUM_PATH is ${explicit}, which is not an executable file: ${INSTALL_HINT}.`,
      );
    return explicit;
  }
  return candidates.find(executable);
}

/**
 * Launches the system Chromium headless with {@link CHROMIUM_ARGS} through playwright-core (which never downloads a
 * browser). Throws {@link ChromiumNotFoundError} when there is none, naming what to install, so a browser test fails
 * at once and says why instead of being skipped.
 */
export async function launchChromium(env: { CHROMIUM_PATH?: string | undefined }): Promise<Browser> {
  const executablePath = findChromium(env);
  if (!executablePath)
    throw new ChromiumNotFoundError(
      `No Chromium found (CHROMIUM_PATH unset; looked at ${CHROMIUM_CANDIDATES.join(', ')}): ${INSTALL_HINT}. ` +
        '`npm test` does this itself where it runs as root with apt-get.',
    );
  try {
    return await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS] });
  } catch (error) {
    throw new ChromiumNotFoundError(
      `Chromium at ${executablePath} could not start: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/**
 * The docker compose command on this machine, as argv: the compose plugin (`docker compose`) or the standalone
 * `docker-compose` (Debian's package), whichever answers `version`; `undefined` when neither does.
 */
export function findCompose(): string[] | undefined {
  return [['docker', 'compose'], ['docker-compose']].find(
    ([cmd, ...args]) => spawnSync(cmd!, [...args, 'version'], { stdio: 'ignore' }).status === 0,
  );
}
