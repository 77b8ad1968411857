import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  ChangeKind as PbChangeKind,
  ChangeSource as PbChangeSource,
  FileDeltaSchema,
  FileStateSchema,
  FileType as PbFileType,
  PolicyLimitsSchema,
  PolicyRuleSchema,
  PolicySchema,
  type FileDelta as PbFileDelta,
  type FileState as PbFileState,
  type Policy as PbPolicy,
} from './gen/vigil/v1/types_pb.js';
import type { Attribute, HashAlgorithm, ChangeKind, ChangeSource, FileDelta, FileState, FileType, Policy } from '../core/model.js';
import { pathProblem } from '../core/path-check.js';

const FILE_TYPE_TO_PB: Record<FileType, PbFileType> = {
  regular: PbFileType.REGULAR,
  directory: PbFileType.DIRECTORY,
  symlink: PbFileType.SYMLINK,
  fifo: PbFileType.FIFO,
  socket: PbFileType.SOCKET,
  char_device: PbFileType.CHAR_DEVICE,
  block_device: PbFileType.BLOCK_DEVICE,
  unknown: PbFileType.UNSPECIFIED,
};
const KIND_TO_PB: Record<ChangeKind, PbChangeKind> = {
  created: PbChangeKind.CREATED,
  modified: PbChangeKind.MODIFIED,
  deleted: PbChangeKind.DELETED,
  attributes: PbChangeKind.ATTRIBUTES,
  refreshed: PbChangeKind.REFRESHED,
};
const SOURCE_TO_PB: Record<ChangeSource, PbChangeSource> = {
  realtime: PbChangeSource.REALTIME,
  scan: PbChangeSource.SCAN,
  rescan: PbChangeSource.RESCAN,
  baseline: PbChangeSource.BASELINE,
  reconcile: PbChangeSource.RECONCILE,
};

/** A wire enum's values to the domain's names: an array indexed by the (small, non-negative) enum number. */
function invert<K extends string>(m: Record<K, number>): { get(v: number): K | undefined } {
  const byNumber: (K | undefined)[] = [];
  for (const [k, v] of Object.entries(m) as [K, number][]) byNumber[v] = k;
  return { get: (v) => byNumber[v] };
}
const FILE_TYPE_FROM_PB = invert(FILE_TYPE_TO_PB);
const KIND_FROM_PB = invert(KIND_TO_PB);
const SOURCE_FROM_PB = invert(SOURCE_TO_PB);

/** A message that cannot be mapped to the domain (unknown enum, missing field). */
export class ContractError extends Error {
  override readonly name: string = 'ContractError';
  readonly code: string = 'invalid_message';
}

/**
 * One delta of a batch whose content cannot be taken (its seq is valid): the controller refuses
 * that delta alone, accounts for its seq and acks it (docs/delivery.md, "Refused deltas").
 */
export class DeltaContentError extends ContractError {
  override readonly name = 'DeltaContentError';
  override readonly code = 'delta_refused';
  constructor(
    readonly seq: number,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`delta ${seq}: ${field} ${reason}`);
  }
}

/** Highest seq a delta may carry: every seq must be a safe integer on both sides (and fit Postgres' bigint). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** 10000-01-01T00:00:00Z: detected_at must be before it. */
const MAX_TIME_MS = 253_402_300_800_000;

export function fileStateToPb(s: FileState): PbFileState {
  return create(FileStateSchema, {
    type: FILE_TYPE_TO_PB[s.type],
    size: BigInt(s.size),
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    mtimeNs: s.mtimeNs,
    ctimeNs: s.ctimeNs,
    inode: s.inode,
    nlink: s.nlink,
    sha256: s.sha256 ?? new Uint8Array(0),
    symlinkTarget: s.symlinkTarget ?? new Uint8Array(0),
    error: s.error ?? '',
    digestAlgorithm: s.digest?.algorithm ?? '',
    digest: s.digest?.value ?? new Uint8Array(0),
    xattrsSha256: s.xattrs ?? new Uint8Array(0),
    ...(s.attrValues ? { attrValues: s.attrValues } : {}),
  });
}

const INT32_MAX = 2 ** 31 - 1;
const INT64_MAX = 2n ** 63n - 1n;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_SEQ_BIG = BigInt(Number.MAX_SAFE_INTEGER);

export function fileStateFromPb(s: PbFileState): FileState {
  if (s.sha256.length !== 0 && s.sha256.length !== 32) throw new ContractError('sha256 must be 32 bytes');
  if (s.xattrsSha256.length !== 0 && s.xattrsSha256.length !== 32) throw new ContractError('xattrs_sha256 must be 32 bytes');
  // What no file system reports, refused before it reaches Postgres' columns.
  if (s.size > MAX_SAFE_BIG) throw new ContractError(`size ${s.size} is out of range`);
  if (s.mode > INT32_MAX) throw new ContractError(`mode ${s.mode} is out of range`);
  if (s.nlink > INT32_MAX) throw new ContractError(`nlink ${s.nlink} is out of range`);
  if (s.mtimeNs > INT64_MAX || s.ctimeNs > INT64_MAX) throw new ContractError('a time is out of range');
  if (s.error.length > 256 || s.error.includes('\0')) throw new ContractError('error must be at most 256 characters, without NUL');
  if (s.symlinkTarget.length > 4096) throw new ContractError('symlink_target must be at most 4096 bytes');
  if (s.digest.length > 64) throw new ContractError('digest must be at most 64 bytes');
  if (s.attrValues !== undefined && s.attrValues.length > 64 * 1024) throw new ContractError('attr_values must be at most 64 KiB');
  return {
    type: FILE_TYPE_FROM_PB.get(s.type) ?? 'unknown',
    size: Number(s.size),
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    mtimeNs: s.mtimeNs,
    ctimeNs: s.ctimeNs,
    inode: s.inode,
    nlink: s.nlink,
    sha256: s.sha256.length ? Buffer.from(s.sha256) : null,
    symlinkTarget: s.symlinkTarget.length ? Buffer.from(s.symlinkTarget) : null,
    error: s.error || null,
    digest: s.digest.length && (s.digestAlgorithm === 'sha512' || s.digestAlgorithm === 'blake2b512') ? { algorithm: s.digestAlgorithm, value: Buffer.from(s.digest) } : null,
    xattrs: s.xattrsSha256.length ? Buffer.from(s.xattrsSha256) : null,
    attrValues: s.attrValues !== undefined ? Buffer.from(s.attrValues) : null,
  };
}

export function deltaToPb(d: FileDelta): PbFileDelta {
  return create(FileDeltaSchema, {
    seq: BigInt(d.seq),
    path: d.path,
    kind: KIND_TO_PB[d.kind],
    state: d.state ? fileStateToPb(d.state) : undefined,
    detectedAt: timestampFromDate(d.detectedAt),
    source: SOURCE_TO_PB[d.source],
  });
}

/**
 * A delta's seq from the wire. Throws ContractError (the whole message is refused) when it is not
 * 1 to MAX_SEQ: a number that cannot be accounted for cannot be refused on its own.
 */
export function deltaSeqFromPb(d: PbFileDelta): number {
  if (d.seq < 1n || d.seq > MAX_SEQ_BIG) throw new ContractError(`delta seq ${d.seq} is out of range (1 to ${MAX_SEQ})`);
  return Number(d.seq);
}

/**
 * Maps a delta from the wire, refusing what does not make sense: DeltaContentError names the seq
 * and the field (the caller refuses that delta alone); ContractError for a seq out of range.
 */
export function deltaFromPb(d: PbFileDelta): FileDelta {
  const seq = deltaSeqFromPb(d);
  const kind = KIND_FROM_PB.get(d.kind);
  if (!kind) throw new DeltaContentError(seq, 'kind', `${d.kind} is not a change kind`);
  // A deletion (or a path leaving the policy) may name a path stored before these checks
  // existed: only what no stored path can hold is refused, so such rows can still be removed.
  const removal = kind === 'deleted' || (kind === 'refreshed' && !d.state);
  const problem = removal ? (d.path.length === 0 || d.path.length > 4096 || d.path.includes(0) ? pathProblem(d.path) : null) : pathProblem(d.path);
  if (problem) throw new DeltaContentError(seq, 'path', problem);
  // A refreshed delta without a state: the path left the policy (docs/delivery.md).
  if (kind !== 'deleted' && kind !== 'refreshed' && !d.state) throw new DeltaContentError(seq, 'state', `is missing (${kind})`);
  let state: FileState | null = null;
  if (kind !== 'deleted' && d.state) {
    try {
      state = fileStateFromPb(d.state);
    } catch (err) {
      throw new DeltaContentError(seq, 'state', err instanceof Error ? err.message : String(err));
    }
  }
  const detectedAt = d.detectedAt ? timestampDate(d.detectedAt) : new Date(0);
  // Postgres' timestamptz holds years 4713 BC to 294276 AD; an agent's clock says something near now.
  if (!(detectedAt.getTime() >= 0 && detectedAt.getTime() < MAX_TIME_MS)) throw new DeltaContentError(seq, 'detected_at', 'is not a time between 1970 and 9999');
  return {
    seq,
    path: Buffer.from(d.path),
    kind,
    state,
    detectedAt,
    source: SOURCE_FROM_PB.get(d.source) ?? 'realtime',
  };
}

/** Maps a delta the controller has stored (for display): nothing is refused, whatever rows older versions kept. */
export function storedDeltaFromPb(d: PbFileDelta): FileDelta {
  return {
    seq: Number(d.seq),
    path: Buffer.from(d.path),
    kind: KIND_FROM_PB.get(d.kind) ?? 'modified',
    state: d.state ? fileStateFromPb(d.state) : null,
    detectedAt: d.detectedAt ? timestampDate(d.detectedAt) : new Date(0),
    source: SOURCE_FROM_PB.get(d.source) ?? 'realtime',
  };
}

export function policyToPb(p: Policy): PbPolicy {
  return create(PolicySchema, {
    version: BigInt(p.version),
    rules: p.rules.map((r) =>
      create(PolicyRuleSchema, {
        name: r.name,
        paths: [...r.paths],
        exclude: [...r.exclude],
        alert: r.alert,
        selector: { ...r.selector },
        include: [...r.include],
        ...(r.maxDepth !== null ? { maxDepth: r.maxDepth } : {}),
        crossFileSystems: r.crossFileSystems,
        attributes: [...r.attributes],
        maxHashBytes: BigInt(r.maxHashBytes ?? 0),
        recheckSeconds: r.recheckSeconds,
        rehashSeconds: r.rehashSeconds,
        hashAlgorithm: r.hashAlgorithm,
        followSymlinks: r.followSymlinks,
      }),
    ),
    limits: create(PolicyLimitsSchema, {
      maxFilesPerRule: BigInt(p.limits.maxFilesPerRule ?? 0),
      nice: p.limits.nice,
      ioBytesPerSecond: BigInt(p.limits.ioBytesPerSecond ?? 0),
      queueBytes: BigInt(p.limits.queueBytes ?? 0),
      maxWatches: BigInt(p.limits.maxWatches ?? 0),
    }),
  });
}

/** Maps a policy from the wire; values are checked by core/policy-schema.ts (validatePolicy). */
export function policyFromPb(p: PbPolicy): Policy {
  return {
    version: Number(p.version),
    rules: p.rules.map((r) => ({
      name: r.name,
      paths: [...r.paths],
      exclude: [...r.exclude],
      alert: r.alert,
      selector: { ...r.selector },
      include: [...r.include],
      maxDepth: r.maxDepth ?? null,
      crossFileSystems: r.crossFileSystems,
      attributes: r.attributes as Attribute[],
      maxHashBytes: r.maxHashBytes > 0n ? Number(r.maxHashBytes) : null,
      recheckSeconds: r.recheckSeconds,
      rehashSeconds: r.rehashSeconds,
      hashAlgorithm: (r.hashAlgorithm || 'sha256') as HashAlgorithm,
      followSymlinks: r.followSymlinks,
    })),
    limits: {
      maxFilesPerRule: p.limits && p.limits.maxFilesPerRule > 0n ? Number(p.limits.maxFilesPerRule) : null,
      nice: p.limits?.nice ?? 0,
      ioBytesPerSecond: p.limits && p.limits.ioBytesPerSecond > 0n ? Number(p.limits.ioBytesPerSecond) : null,
      queueBytes: p.limits && p.limits.queueBytes > 0n ? Number(p.limits.queueBytes) : null,
      maxWatches: p.limits && p.limits.maxWatches > 0n ? Number(p.limits.maxWatches) : null,
    },
  };
}
