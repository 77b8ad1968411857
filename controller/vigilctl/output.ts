import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { Event } from '../../proto/gen/vigil/v1/admin_pb.js';
import { deltaFromPb } from '../../proto/convert.js';
import { displayPath } from '../../proto/model.js';

export function ts(t: Timestamp | undefined): string | null {
  return t ? timestampDate(t).toISOString() : null;
}

/** Nanoseconds since the epoch as an ISO-8601 string with nanosecond digits. */
export function nsToIso(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** The JSON shape of one event in `vigilctl events --json` (documented in docs/cli.md). */
export function eventJson(e: Event) {
  const d = deltaFromPb(e.delta!);
  const s = d.state;
  return {
    agentId: e.agentId,
    seq: d.seq,
    path: displayPath(d.path),
    pathBytes: d.path.toString('base64'),
    kind: d.kind,
    source: d.source,
    type: s?.type ?? null,
    sha256: s?.sha256 ? s.sha256.toString('hex') : null,
    digest: s?.digest ? { algorithm: s.digest.algorithm, hex: s.digest.value.toString('hex') } : null,
    xattrsSha256: s?.xattrs ? s.xattrs.toString('hex') : null,
    size: s ? s.size : null,
    mode: s ? s.mode : null,
    uid: s ? s.uid : null,
    gid: s ? s.gid : null,
    mtime: s ? nsToIso(s.mtimeNs) : null,
    inode: s ? s.inode.toString() : null,
    symlinkTarget: s?.symlinkTarget ? displayPath(s.symlinkTarget) : null,
    error: s?.error ?? null,
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
