/** A system program the tests drive, how to find it, and the Debian packages that provide it. */
export interface SystemTool {
  /** What it is called in messages: "Chromium". */
  name: string;
  /** Where it is, or `undefined` when this machine has none. May throw to report a wrong explicit setting. */
  find: () => string | undefined;
  /** Debian packages that install it (`apt-get install --no-install-recommends`). */
  aptPackages: readonly string[];
  /** What to do by hand, for a process that may not install packages. */
  hint: string;
}

/** What the setup step does: report what it found, install what is missing, or say in one line what to install. */
export interface SetupPlan {
  found: { name: string; at: string }[];
  /** Missing tools this process installs with apt-get (root with apt-get only). */
  install: SystemTool[];
  /** One line naming what to install by hand, when something is missing and this process may not install it. */
  missing?: string;
}

/**
 * Decides the test suite's setup: installing system packages is planned only for root with apt-get (Debian's
 * packages); anyone else is told, in one line, what to install.
 */
export function planSetup(tools: readonly SystemTool[], can: { isRoot: boolean; hasAptGet: boolean }): SetupPlan {
  const found: SetupPlan['found'] = [];
  const absent: SystemTool[] = [];
  for (const tool of tools) {
    const at = tool.find();
    if (at) found.push({ name: tool.name, at });
    else absent.push(tool);
  }
  if (absent.length === 0) return { found, install: [] };
  if (can.isRoot && can.hasAptGet) return { found, install: absent };
  return {
    found,
    install: [],
    missing:
      `The tests need ${absent.map((t) => t.name).join(' and ')}, which this machine lacks: ` +
      `${absent.map((t) => t.hint).join('; ')}; then run npm test again.`,
  };
}
