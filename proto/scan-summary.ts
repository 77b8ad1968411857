/**
 * The scan summary (core/scan-summary.ts) mapped to and from the wire: types.proto's ScanSummary,
 * carried up in the agent's ScanReport and down to vigilctl in CommandStatus.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import type { ScanReport, ScanSummary } from '../core/scan-summary.js';
import { ContractError } from './convert.js';
import type { ScanReport as PbScanReport, ScanReportSchema } from './gen/vigil/v1/agent_pb.js';
import { ScanSummarySchema, type ScanSummary as PbScanSummary } from './gen/vigil/v1/types_pb.js';

export function scanSummaryToPb(s: ScanSummary): PbScanSummary {
  return create(ScanSummarySchema, {
    filesScanned: BigInt(s.filesScanned),
    changes: BigInt(s.changes),
    errors: BigInt(s.errors),
    startedAt: timestampFromDate(s.startedAt),
    finishedAt: timestampFromDate(s.finishedAt),
  });
}

function time(t: Timestamp | undefined, field: string): Date {
  if (!t) throw new ContractError(`scan summary: ${field} is missing`);
  return timestampDate(t);
}

/** Refuses a missing summary or a summary without its times (ContractError). */
export function scanSummaryFromPb(pb: PbScanSummary | undefined): ScanSummary {
  if (!pb) throw new ContractError('scan summary is missing');
  return {
    filesScanned: Number(pb.filesScanned),
    changes: Number(pb.changes),
    errors: Number(pb.errors),
    startedAt: time(pb.startedAt, 'started_at'),
    finishedAt: time(pb.finishedAt, 'finished_at'),
  };
}

/** Longest failure reason kept from an agent's report. */
const MAX_FAILURE = 1000;

export function scanReportToPb(r: ScanReport): MessageInitShape<typeof ScanReportSchema> {
  return { commandId: r.commandId ?? '', policyVersion: BigInt(r.policyVersion), summary: scanSummaryToPb(r.summary), failure: r.failure ?? '' };
}

/** Longest command id taken (the controller's are UUIDs). */
const MAX_COMMAND_ID = 128;

/**
 * An agent's report as the controller takes it: a command id that cannot be one of ours is refused
 * (ContractError: INVALID_ARGUMENT); a failure reason is cut to MAX_FAILURE characters, NULs
 * replaced (Postgres text cannot hold them).
 */
export function scanReportFromPb(pb: PbScanReport): ScanReport {
  if (pb.commandId.length > MAX_COMMAND_ID || pb.commandId.includes('\0')) throw new ContractError(`scan report: command_id is not a command id (at most ${MAX_COMMAND_ID} characters, no NUL)`);
  return {
    commandId: pb.commandId || null,
    policyVersion: Number(pb.policyVersion),
    summary: scanSummaryFromPb(pb.summary),
    ...(pb.failure ? { failure: pb.failure.slice(0, MAX_FAILURE).replaceAll('\0', '\uFFFD') } : {}),
  };
}
