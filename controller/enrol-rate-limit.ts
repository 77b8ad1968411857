import type { Clock } from './store/index.js';

/**
 * Counts failed enrolment attempts per source address in a sliding window. An address over the
 * limit is refused until its oldest failure leaves the window. Memory is bounded: past maxKeys
 * addresses the least recently failing ones are forgotten.
 */
export interface FailureLimiter {
  /** Milliseconds until this address may try again; 0 when it may now. */
  blockedFor(key: string): number;
  recordFailure(key: string): void;
}

export interface FailureLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxKeys?: number;
  readonly clock: Clock;
}

export function createFailureLimiter(opts: FailureLimiterOptions): FailureLimiter {
  const failures = new Map<string, number[]>();
  const maxKeys = opts.maxKeys ?? 10_000;
  const recent = (key: string, now: number) => (failures.get(key) ?? []).filter((t) => t > now - opts.windowMs);
  return {
    blockedFor(key) {
      const now = opts.clock().getTime();
      const times = recent(key, now);
      if (times.length < opts.maxFailures) return 0;
      return times[times.length - opts.maxFailures]! + opts.windowMs - now;
    },
    recordFailure(key) {
      const now = opts.clock().getTime();
      const times = recent(key, now);
      times.push(now);
      failures.delete(key);
      failures.set(key, times.slice(-opts.maxFailures));
      while (failures.size > maxKeys) failures.delete(failures.keys().next().value!);
    },
  };
}
