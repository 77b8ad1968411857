import type { Clock, EnrolFailureStore } from './store/index.js';

/**
 * Counts failed enrolment attempts per source address in a sliding window, in the database, so
 * the limit holds across replicas (docs/security.md, "Enrolment rate limit"). An address over the
 * limit is refused until its oldest counted failure leaves the window.
 */
export interface FailureLimiter {
  /** Milliseconds until this address may try again; 0 when it may now. */
  blockedFor(key: string): Promise<number>;
  recordFailure(key: string): Promise<void>;
}

export interface FailureLimiterOptions {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly store: EnrolFailureStore;
  readonly clock: Clock;
}

export function createFailureLimiter(opts: FailureLimiterOptions): FailureLimiter {
  const { store, clock, windowMs, maxFailures } = opts;
  return {
    async blockedFor(key) {
      const now = clock().getTime();
      const times = await store.recent(key, new Date(now - windowMs), maxFailures);
      if (times.length < maxFailures) return 0;
      return times[times.length - 1]!.getTime() + windowMs - now;
    },
    async recordFailure(key) {
      const now = clock();
      await store.record(key, now, new Date(now.getTime() - windowMs));
    },
  };
}
