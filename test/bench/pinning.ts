// CPU pinning for the bench (Linux taskset, util-linux). Unpinned, the server under test shares
// every core with h2load, Redis and the bench itself, so a run measures how the scheduler took
// turns as much as the server. Pinned, each single-process server has the last CPU to itself and
// everything else (load generator, Redis, rotator, the bench) runs on the others: every target
// gets the same one core, which is also what one tokenscope process gets in a pod with a
// 1-CPU limit. `--workers 2` cannot have two cores to itself on a 2-core machine and is not pinned.
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";

export interface Pinning {
  /** The CPU list (taskset -c) for one server process under test. */
  readonly server: string;
  /** The CPU list for h2load, Redis and the bench. */
  readonly load: string;
  /** Every CPU: to undo a pin. */
  readonly all: string;
}

/** Pinning for this machine, or undefined when it has a single CPU or no taskset. */
export function pinningHere(): Pinning | undefined {
  const cpus = availableParallelism();
  if (cpus < 2) return undefined;
  if (spawnSync("taskset", ["--version"]).status !== 0) return undefined;
  const last = cpus - 1;
  return { server: String(last), load: last === 1 ? "0" : `0-${last - 1}`, all: `0-${last}` };
}

/** Pins every thread of a running process (taskset -a -p); threads it starts later inherit. */
export function pin(pid: number, cpus: string): void {
  const result = spawnSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], {
    encoding: "utf8",
  });
  if (result.status !== 0) {
    throw new Error(`taskset could not pin ${pid} to CPU ${cpus}: ${result.stderr.trim()}`);
  }
}

/** A command line that runs `command` on `cpus` (taskset execs it: same pid, same output). */
export function pinnedCommand(
  cpus: string | undefined,
  command: string,
  args: string[],
): [string, string[]] {
  return cpus === undefined ? [command, args] : ["taskset", ["-c", cpus, command, ...args]];
}
