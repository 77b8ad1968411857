import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Fanout } from '../fanout.js';
import type { ClaimedCommand, Clock, CommandStore } from '../store/index.js';
import type { AgentHub, AgentSession } from './agent-hub.js';
import type { AgentCommand } from './down-message.js';

/** What a fleet operation asks of agents: today a re-scan. */
export interface CommandRequest {
  readonly kind: 'rescan';
  readonly fullHash: boolean;
  /** These agents, or every agent that can still connect. */
  readonly targets: { readonly agentIds: readonly string[] } | 'every-agent';
  readonly createdBy: string;
  /** How long the commands wait for their agents and reports; the controller's default when absent. */
  readonly expiresInMs?: number | undefined;
}

export interface SentCommands {
  readonly groupId: string;
  readonly expiresAt: Date;
  /** Per target agent, by agent id: delivered when handed to a stream on this replica. */
  readonly targets: readonly { readonly agentId: string; readonly commandId: string; readonly delivered: boolean }[];
}

/**
 * Commands as a fleet operation (docs/commands.md). A group's commands are created in one
 * statement, claimed for the agents connected here in one statement and handed to their streams
 * in memory; the other replicas are told through the fan-out and claim theirs; an agent not
 * connected anywhere gets its pending commands when a stream of it attaches (deliverPending).
 * Claiming (pending → delivered, conditional on pending) is what makes delivery at most once
 * across replicas and racing streams; a stream that had closed gives its claims back.
 */
export interface CommandDispatch {
  send(request: CommandRequest): Promise<SentCommands>;
  /** Hands a just-attached stream its agent's pending commands; returns how many. Never rejects. */
  deliverPending(session: AgentSession): Promise<number>;
  /** Marks expired and revoked agents' commands, and claims what is pending for agents here. */
  sweep(): Promise<{ expired: number; failed: number; delivered: number }>;
}

/** The domain command for a claimed row; null for a kind this controller does not send. */
function agentCommand(c: ClaimedCommand): AgentCommand | null {
  return c.kind === 'rescan' ? { id: c.id, kind: 'rescan', fullHash: c.args.fullHash === true } : null;
}

export function createCommandDispatch(deps: { commands: CommandStore; hub: AgentHub; fanout: Fanout; clock: Clock; logger: Logger; expiryMs: number }): CommandDispatch {
  const { commands, hub, fanout, clock } = deps;
  const log = deps.logger.child({ component: 'commands' });

  // No command is pending anywhere after this time (ms): a stream attaching later needs no query.
  // Only ever too late, never too early: it starts unknown (infinite), grows with every group
  // created here or announced by another replica, and is re-read from the table by the sweep.
  let pendingUntil = Number.POSITIVE_INFINITY;
  let notedDuringRead = 0;
  let reading = 0;
  const note = (untilMs: number) => {
    pendingUntil = Math.max(pendingUntil, untilMs);
    if (reading) notedDuringRead = Math.max(notedDuringRead, untilMs);
  };
  const readPendingUntil = async () => {
    if (!reading++) notedDuringRead = 0;
    try {
      const until = (await commands.pendingUntil())?.getTime() ?? 0;
      pendingUntil = Math.max(until, notedDuringRead);
    } finally {
      reading--;
    }
  };
  const maybePending = () => clock().getTime() < pendingUntil;

  /** Hands claimed commands to their streams; gives back (and re-announces) those whose stream had closed. */
  const deliver = async (claimed: readonly ClaimedCommand[], sessionOf: (agentId: string) => AgentSession | undefined, retry = true): Promise<Set<string>> => {
    const undelivered: ClaimedCommand[] = [];
    const delivered = new Set<string>();
    for (const c of claimed) {
      const command = agentCommand(c);
      if (command && sessionOf(c.agentId)?.send({ type: 'command', command })) delivered.add(c.id);
      else undelivered.push(c);
    }
    if (undelivered.length) {
      await commands.unclaim(undelivered.map((c) => c.id));
      const groups = new Map<string, number>();
      for (const c of undelivered) groups.set(c.groupId, Math.max(groups.get(c.groupId) ?? 0, c.expiresAt.getTime()));
      for (const [groupId, expiresAtMs] of groups) await fanout.publish({ type: 'commands', groupId, expiresAtMs });
      // The agent may have reconnected here meanwhile, its new stream's look already taken: once more.
      const reconnected = [...new Set(undelivered.filter((c) => hub.get(c.agentId)).map((c) => c.agentId))];
      if (retry && reconnected.length) {
        for (const id of await deliver(await commands.claimPending(reconnected), (a) => hub.get(a), false)) delivered.add(id);
      }
    }
    return delivered;
  };

  const claimHere = async (groupId?: string) => {
    const ids = hub.ids();
    if (!ids.length) return 0;
    return (await deliver(await commands.claimPending(ids, groupId), (id) => hub.get(id))).size;
  };

  void readPendingUntil().catch((err: unknown) => log.error({ err }, 'reading pending commands failed'));

  fanout.subscribe((event, origin) => {
    if (event.type !== 'commands') return;
    note(event.expiresAtMs);
    // A group made here was claimed for this replica's agents when it was made.
    if (origin === fanout.replicaId) return;
    void claimHere(event.groupId).catch((err: unknown) => log.error({ err, groupId: event.groupId }, 'claiming announced commands failed'));
  });
  fanout.onResync(() => {
    void readPendingUntil()
      .then(() => (maybePending() ? claimHere() : 0))
      .catch((err: unknown) => log.error({ err }, 'claiming pending commands after a fan-out outage failed'));
  });

  return {
    async send(req) {
      const t0 = performance.now();
      const groupId = randomUUID();
      const expiresAt = new Date(clock().getTime() + (req.expiresInMs ?? deps.expiryMs));
      // The agents connected here get their commands created claimed (the insert is the claim).
      const created = await commands.createGroup({
        groupId,
        kind: req.kind,
        args: { fullHash: req.fullHash },
        createdBy: req.createdBy,
        expiresAt,
        targets: req.targets,
        claimedFor: hub.ids(),
      });
      if (!created.length) return { groupId, expiresAt, targets: [] };
      note(expiresAt.getTime());
      const createdMs = performance.now() - t0;
      const claimed = created.filter((c) => c.claimed).map((c) => ({ id: c.id, groupId, agentId: c.agentId, expiresAt, kind: req.kind, args: { fullHash: req.fullHash } }));
      const delivered = await deliver(claimed, (id) => hub.get(id));
      // A stream that attached here while the insert ran may have looked before it committed.
      const attached = created.filter((c) => !c.claimed && hub.get(c.agentId)).map((c) => c.agentId);
      if (attached.length) for (const id of await deliver(await commands.claimPending(attached, groupId), (a) => hub.get(a))) delivered.add(id);
      if (delivered.size < created.length) await fanout.publish({ type: 'commands', groupId, expiresAtMs: expiresAt.getTime() });
      const ms = (t: number) => Math.round(t * 10) / 10;
      log.info({ groupId, kind: req.kind, targets: created.length, deliveredHere: delivered.size, createdBy: req.createdBy, createdMs: ms(createdMs), sentMs: ms(performance.now() - t0) }, 'commands sent');
      return { groupId, expiresAt, targets: created.map((c) => ({ agentId: c.agentId, commandId: c.id, delivered: delivered.has(c.id) })) };
    },

    async deliverPending(session) {
      if (!maybePending()) return 0;
      try {
        const claimed = await commands.claimPending([session.agentId]);
        if (!claimed.length) return 0;
        const n = (await deliver(claimed, (id) => (id === session.agentId ? session : undefined))).size;
        log.debug({ agentId: session.agentId, delivered: n }, 'queued commands delivered');
        return n;
      } catch (err) {
        log.error({ err, agentId: session.agentId }, 'delivering queued commands failed; the sweep tries again');
        return 0;
      }
    },

    async sweep() {
      const { expired, failed } = await commands.sweep();
      if (expired || failed) log.info({ expired, failed }, 'commands expired or failed (agent revoked)');
      await readPendingUntil();
      const delivered = maybePending() ? await claimHere() : 0;
      return { expired, failed, delivered };
    },
  };
}
