// CPU time and RSS of a process and its descendants, from /proc (Linux).
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ; 100 on every Linux architecture Node runs on

interface Stat {
  readonly pid: number;
  readonly ppid: number;
  readonly cpuSeconds: number;
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces: split after the last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
    return { pid, ppid: Number(fields[1]), cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

export function processTree(root: number): number[] {
  const all: Stat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.push(s);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const s of all) if (s.ppid === tree[i]) tree.push(s.pid);
  }
  return tree;
}

export function cpuSeconds(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + (readStat(pid)?.cpuSeconds ?? 0), 0);
}

export function rssBytes(root: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  let sum = 0;
  for (const pid of processTree(root)) {
    try {
      const re = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m");
      const m = re.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      sum += Number(m?.[1] ?? 0) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return sum;
}

/** The high-water mark of RSS (VmHWM), summed over the process tree. */
export function peakRssBytes(root: number): number {
  return rssBytes(root, "VmHWM");
}
