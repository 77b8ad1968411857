import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { Agent, CurrentFile, Event, RefusedDelta } from '../../proto/gen/vigil/v1/admin_pb.js';
import { fileStateFromPb, storedDeltaFromPb } from '../../proto/convert.js';
import { displayPath } from '../../core/model.js';
import { fileStateJson, nsToIso, pathJson } from '../../core/file-state-json.js';

export function ts(t: Timestamp | undefined): string | null {
  return t ? timestampDate(t).toISOString() : null;
}


/** The JSON shape of one event in `vigilctl events --json` (documented in docs/cli.md). */
export function eventJson(e: Event) {
  const d = storedDeltaFromPb(e.delta!);
  return {
    agentId: e.agentId,
    seq: d.seq,
    ...pathJson(d.path),
    kind: d.kind,
    source: d.source,
    ...fileStateJson(d.state),
    detectedAt: d.detectedAt.toISOString(),
    committedAt: ts(e.committedAt),
  };
}

/** A plain left-aligned table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function modeString(mode: number | null): string {
  return mode === null ? '-' : (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Bytes as B, KiB, MiB or GiB. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** The JSON shape of `vigilctl agents show --json` (documented in docs/cli.md). */
export function agentDetailJson(a: Agent, eventsStored: number, refused: readonly RefusedDelta[] = []) {
  const d = a.delivery;
  const lastSeq = Number(a.lastSeq);
  const refreshed = Number(a.refreshedCount);
  const refusedCount = Number(a.refusedCount);
  return {
    id: a.id,
    hostname: a.hostname,
    status: a.status,
    connected: a.connected,
    /** The controller replica holding its stream; null when disconnected. */
    replica: a.replica || null,
    enrolledAt: ts(a.enrolledAt),
    lastSeenAt: ts(a.lastSeenAt),
    policyVersion: Number(a.policyVersion),
    labels: a.labels,
    certNotAfter: ts(a.certNotAfter),
    revokedAt: ts(a.revokedAt),
    lastSeq,
    eventsStored,
    refreshedCount: refreshed,
    refusedCount,
    /** Every committed seq is one history row, one refreshed delta or one refused delta, once. */
    accounted: eventsStored + refreshed + refusedCount === lastSeq,
    /** The most recent refused deltas, newest first. */
    refused: refused.map((r) => ({ seq: Number(r.seq), field: r.field, reason: r.reason, path: r.path.length ? displayPath(Buffer.from(r.path)) : null, kind: r.kind || null, refusedAt: ts(r.refusedAt) })),
    /** Set while the controller refuses this agent's delta messages whole. */
    deliveryBlocked: a.deliveryBlocked ? { seq: Number(a.deliveryBlocked.seq), reason: a.deliveryBlocked.reason, at: ts(a.deliveryBlocked.at) } : null,
    delivery: d
      ? {
          reportedAt: ts(a.deliveryReportedAt),
          resyncNeeded: d.resyncNeeded,
          resyncSince: ts(d.resyncSince),
          unqueuedChanges: Number(d.unqueuedChanges),
          queueLength: Number(d.queueLength),
          queueBytes: Number(d.queueBytes),
          queueLimitBytes: Number(d.queueLimitBytes),
          lastReconcileAt: ts(d.lastReconcileAt),
          lastReconcileRepairs: Number(d.lastReconcileRepairs),
          scheduledOnly: d.scheduledOnly,
          scheduledOnlyTotal: Math.max(Number(d.scheduledOnlyTotal), d.scheduledOnly.length),
          gapsTotal: Number(d.gapsTotal),
          gaps: d.gaps.map((g) => ({ at: ts(g.at), root: g.root, reason: g.reason, detail: g.detail, changesFound: Number(g.changesFound) })),
        }
      : null,
  };
}

/** "none", "N", or "N, the first K shown". */
const countShown = (total: number, shown: number) => (!total ? 'none' : total > shown ? `${total}, the first ${shown} shown` : String(total));

/** `vigilctl agents show` as text. */
export function agentDetailText(j: ReturnType<typeof agentDetailJson>): string {
  const lines = [
    `agent        ${j.id}`,
    `hostname     ${j.hostname}`,
    `status       ${j.status}${j.lastSeenAt ? ` (last seen ${j.lastSeenAt})` : ''}`,
    `policy       v${j.policyVersion}`,
    `labels       ${Object.entries(j.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-'}`,
    `certificate  expires ${j.certNotAfter ?? '-'}`,
    `sequence     ${j.lastSeq} committed: ${j.eventsStored} events + ${j.refreshedCount} refreshed${j.refusedCount ? ` + ${j.refusedCount} refused` : ''}${j.accounted ? ', every number accounted for' : ' — NOT every number is accounted for'}`,
  ];
  if (j.deliveryBlocked) lines.push(`delivery     BLOCKED at seq ${j.deliveryBlocked.seq}: ${j.deliveryBlocked.reason} (since ${j.deliveryBlocked.at ?? '-'})`);
  if (j.refusedCount) {
    lines.push(`refused deltas: ${j.refusedCount} in all${j.refusedCount > j.refused.length ? `, the last ${j.refused.length} shown` : ''} (not stored; each number accounted for)`);
    lines.push(table(['  SEQ', 'KIND', 'PATH', 'REFUSED'], j.refused.map((r) => [`  ${r.seq}`, r.kind ?? '-', r.path ?? '-', `${r.field} ${r.reason}`])));
  }
  const d = j.delivery;
  if (!d) {
    lines.push('delivery     no report from the agent yet');
    return lines.join('\n');
  }
  lines.push(
    `queue        ${d.queueLength} deltas, ${bytes(d.queueBytes)} of ${bytes(d.queueLimitBytes)} (reported ${d.reportedAt ?? '-'})`,
    `resync       ${d.resyncNeeded ? `NEEDED since ${d.resyncSince ?? '-'}: ${d.unqueuedChanges} changes recorded on the agent but not queued; it reconciles once its queue is delivered` : 'not needed'}`,
    `reconciled   ${d.lastReconcileAt ? `${d.lastReconcileAt}, ${d.lastReconcileRepairs} repairs` : 'not yet'}`,
    `scheduled only (not watched in real time): ${countShown(d.scheduledOnlyTotal, d.scheduledOnly.length)}`,
    ...d.scheduledOnly.map((s) => `  ${s}`),
    `gap records: ${d.gapsTotal} in all${d.gapsTotal > d.gaps.length ? `, the last ${d.gaps.length} shown` : ''}`,
  );
  if (d.gaps.length) {
    lines.push(
      table(
        ['  AT', 'ROOT', 'REASON', 'CHANGES FOUND', 'DETAIL'],
        d.gaps.map((g) => [`  ${g.at ?? '-'}`, g.root, g.reason, String(g.changesFound), g.detail]),
      ),
    );
  }
  return lines.join('\n');
}

/** The JSON shape of one file in `vigilctl files --json` (documented in docs/cli.md). */
export function fileJson(f: CurrentFile) {
  return { ...pathJson(Buffer.from(f.path)), ...fileStateJson(fileStateFromPb(f.state!)), updatedSeq: Number(f.updatedSeq) };
}
