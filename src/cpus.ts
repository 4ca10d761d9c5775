// How many CPUs this process may really use: the scheduler's view (affinity) capped by the
// container's CPU limit. In a Kubernetes pod limited to 2 CPUs on a 64-core node,
// os.availableParallelism() says 64; the cgroup's quota says 2.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/** cgroup v2 `cpu.max` ("max 100000" or "<quota> <period>"): the limit in CPUs, if any. */
export function cpuLimitFromCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === "max" || period === undefined) return undefined;
  const cpus = Number(quota) / Number(period);
  return Number.isFinite(cpus) && cpus > 0 ? cpus : undefined;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function cgroupCpuLimit(): number | undefined {
  const v2 = read("/sys/fs/cgroup/cpu.max");
  if (v2 !== undefined) return cpuLimitFromCpuMax(v2);
  const quota = read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  const period = read("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  if (quota === undefined || period === undefined || Number(quota) <= 0) return undefined;
  return cpuLimitFromCpuMax(`${quota.trim()} ${period.trim()}`);
}

/**
 * Whole CPUs, at least 1. A fractional limit rounds down: a 1.5-CPU pod runs one worker rather
 * than two that the CFS quota would throttle in turn (throttling shows up as p99 latency).
 */
export function usableCpus(): number {
  const limit = cgroupCpuLimit();
  const cpus = availableParallelism();
  return Math.max(1, limit === undefined ? cpus : Math.min(cpus, Math.floor(limit)));
}
