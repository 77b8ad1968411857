/**
 * How long to wait before reconnect attempt n: anywhere from 0 to the current ceiling, uniformly
 * ("full jitter", as in AWS's backoff study). A fleet cut off at once (a controller restarted, a
 * load balancer failing over) comes back spread over the whole window instead of in a herd, and
 * every failed attempt doubles the window, so a controller that is slow to accept sees fewer
 * attempts, not more.
 */
export function fullJitter(ceilingMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * ceilingMs);
}

/** The next ceiling after a failed attempt: doubled, up to maxMs. */
export function nextCeiling(ceilingMs: number, maxMs: number): number {
  return Math.min(ceilingMs * 2, maxMs);
}
