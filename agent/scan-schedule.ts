import type { Policy } from '../core/model.js';

/** The scheduled scans of a policy. */
export interface ScanSchedule {
  /** Replaces the schedule with the policy's. */
  set(policy: Policy): void;
  stop(): void;
}

/**
 * Stat-only re-checks and full re-hashes, each at the shortest interval any rule of the policy
 * asks for (`recheck`, `rehash`); scan(fullHash) starts one. The timers never keep the process alive.
 */
export function createScanSchedule(scan: (fullHash: boolean) => void): ScanSchedule {
  let timers: NodeJS.Timeout[] = [];
  const stop = () => {
    for (const t of timers) clearInterval(t);
    timers = [];
  };
  const every = (seconds: number, fullHash: boolean) => {
    const t = setInterval(() => scan(fullHash), seconds * 1000);
    t.unref();
    timers.push(t);
  };
  return {
    set(p) {
      stop();
      if (!p.rules.length) return;
      every(Math.min(...p.rules.map((r) => r.recheckSeconds)), false);
      every(Math.min(...p.rules.map((r) => r.rehashSeconds)), true);
    },
    stop,
  };
}
