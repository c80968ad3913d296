/** Shared by the CLI's tests, which run the CLI as users do: the built entry point in a child process. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The built entry point (`npm test` builds first). */
export const CLI_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
export const MODELS = fileURLToPath(new URL('../../../models/', import.meta.url));

const run = promisify(execFile);

/** What one run printed and how it exited. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `lookalike <args>` with this process's environment and `env` on top, and waits for it to exit. */
export async function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_MAIN, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
