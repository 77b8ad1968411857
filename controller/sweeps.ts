import type { Logger } from 'pino';
import type { AlertOutbox } from './alerts/outbox.js';
import type { CommandDispatch } from './fleet/command-dispatch.js';
import type { Revocations } from './fleet/revocations.js';

/**
 * The periodic safety nets: revoked agents' streams cut even when a fan-out event was missed, and
 * alerts left in the outbox (Slack down, a crash between commit and send) sent again; the outbox
 * is swept once at start-up too; commands past their expiry marked expired, revoked agents'
 * commands failed, and pending commands of agents connected here claimed (a missed fan-out event).
 */
export function startSweeps(opts: {
  readonly revocationSweepMs: number;
  readonly alertSweepMs: number;
  readonly commandSweepMs: number;
  readonly revocations: Revocations;
  readonly commands: Pick<CommandDispatch, 'sweep'>;
  readonly outbox: AlertOutbox;
  readonly logger: Logger;
}): { stop(): void } {
  const { revocations, outbox, logger } = opts;
  const sweepAlerts = () => void outbox.sweep().catch((err: unknown) => logger.error({ err }, 'alert outbox sweep failed'));
  const sweepRevoked = () => void revocations.sweep().catch((err: unknown) => logger.error({ err }, 'revocation sweep failed'));
  const sweepCommands = () => void opts.commands.sweep().catch((err: unknown) => logger.error({ err }, 'command sweep failed'));
  const timers = [setInterval(sweepAlerts, opts.alertSweepMs), setInterval(sweepRevoked, opts.revocationSweepMs), setInterval(sweepCommands, opts.commandSweepMs)];
  for (const t of timers) t.unref();
  sweepAlerts();
  return {
    stop() {
      for (const t of timers) clearInterval(t);
    },
  };
}
