import type { Logger } from 'pino';
import type { AlertOutbox } from './alerts/outbox.js';
import type { Revocations } from './fleet/revocations.js';

/**
 * The periodic safety nets: revoked agents' streams cut even when a fan-out event was missed, and
 * alerts left in the outbox (Slack down, a crash between commit and send) sent again; the outbox
 * is swept once at start-up too.
 */
export function startSweeps(opts: {
  readonly revocationSweepMs: number;
  readonly alertSweepMs: number;
  readonly revocations: Revocations;
  readonly outbox: AlertOutbox;
  readonly logger: Logger;
}): { stop(): void } {
  const { revocations, outbox, logger } = opts;
  const sweepAlerts = () => void outbox.sweep().catch((err: unknown) => logger.error({ err }, 'alert outbox sweep failed'));
  const sweepRevoked = () => void revocations.sweep().catch((err: unknown) => logger.error({ err }, 'revocation sweep failed'));
  const timers = [setInterval(sweepAlerts, opts.alertSweepMs), setInterval(sweepRevoked, opts.revocationSweepMs)];
  for (const t of timers) t.unref();
  sweepAlerts();
  return {
    stop() {
      for (const t of timers) clearInterval(t);
    },
  };
}
