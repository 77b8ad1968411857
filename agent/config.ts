import { z } from 'zod';
import { AgentError } from './errors.js';

/**
 * Agent options, compiled once into a validated object (the agent's policy, which the controller
 * sends, holds everything about what is watched; these are how this process runs). Defaults:
 *
 * | option                   | env           | default  | what                                                    |
 * |--------------------------|---------------|----------|---------------------------------------------------------|
 * | stream.batchSize         |               | 500      | deltas per batch sent up the stream                     |
 * | stream.maxInFlight       |               | 5000     | deltas sent and not yet acked                           |
 * | stream.backoff.initialMs |               | 1000     | first reconnect window (full jitter: 0 to it; doubled per failure) |
 * | stream.backoff.maxMs     |               | 15000    | longest reconnect delay (and the pace after a refusal)  |
 * | stream.reconcileEveryMs  |               | 600000   | reconciliation besides the one on every connect         |
 * | stream.renewRetryMs      |               | 30000    | a failed certificate renewal is tried again after this  |
 * | stream.stableAfterMs     |               | 30000    | a stream that lasted this long resets the backoff       |
 * | watch.coalesceMs         |               | 50       | inotify events coalesced per path within this window    |
 * | capture.enabled          | VIGIL_CAPTURE | on (1)   | fanotify write capture (root; docs/delivery.md)         |
 * | capture.holdMs           |               | 10000    | a written file's descriptor held at most this long      |
 * | capture.maxHeld          |               | 4096     | descriptors held at most                                |
 */
const schema = z.object({
  stream: z
    .object({
      batchSize: z.number().int().min(1).max(1000).default(500),
      maxInFlight: z.number().int().min(1).default(5000),
      backoff: z
        .object({ initialMs: z.number().int().min(1).default(1000), maxMs: z.number().int().min(1).default(15_000) })
        .refine((b) => b.initialMs <= b.maxMs, 'backoff.initialMs must not exceed backoff.maxMs')
        .default({ initialMs: 1000, maxMs: 15_000 }),
      reconcileEveryMs: z.number().int().min(1000).default(600_000),
      renewRetryMs: z.number().int().min(1).default(30_000),
      stableAfterMs: z.number().int().min(1).default(30_000),
    })
    .default({ batchSize: 500, maxInFlight: 5000, backoff: { initialMs: 1000, maxMs: 15_000 }, reconcileEveryMs: 600_000, renewRetryMs: 30_000, stableAfterMs: 30_000 }),
  watch: z.object({ coalesceMs: z.number().int().min(1).max(10_000).default(50) }).default({ coalesceMs: 50 }),
  capture: z
    .object({
      enabled: z.boolean().default(true),
      holdMs: z.number().int().min(1).default(10_000),
      maxHeld: z.number().int().min(1).default(4096),
    })
    .default({ enabled: true, holdMs: 10_000, maxHeld: 4096 }),
});

export type AgentConfig = z.infer<typeof schema>;
export type StreamOptions = AgentConfig['stream'];
/** Options as given: every field optional. */
export type AgentConfigInput = z.input<typeof schema>;

/** The defaults (an empty input compiled). */
export const AGENT_DEFAULTS: AgentConfig = schema.parse({});

export function compileAgentConfig(input: AgentConfigInput = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const capture = env.VIGIL_CAPTURE;
  if (capture !== undefined && capture !== '0' && capture !== '1') throw new AgentError('invalid_argument', `VIGIL_CAPTURE: 0 or 1, not "${capture}"`);
  const res = schema.safeParse({ ...input, capture: { ...input.capture, ...(capture !== undefined ? { enabled: capture === '1' } : {}) } });
  if (!res.success) {
    const issue = res.error.issues[0]!;
    throw new AgentError('invalid_argument', `agent option ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return res.data;
}
