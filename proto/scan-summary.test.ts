import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { describe, it } from 'node:test';
import type { ScanReport } from '../core/scan-summary.js';
import { ContractError } from './convert.js';
import { ScanReportSchema } from './gen/vigil/v1/agent_pb.js';
import { CommandStatusSchema } from './gen/vigil/v1/admin_pb.js';
import { ScanSummarySchema } from './gen/vigil/v1/types_pb.js';
import { scanReportFromPb, scanReportToPb, scanSummaryFromPb, scanSummaryToPb } from './scan-summary.js';

const summary = { filesScanned: 1234, changes: 5, errors: 1, startedAt: new Date('2026-03-01T10:00:00.125Z'), finishedAt: new Date('2026-03-01T10:00:07.5Z') };

describe('scan summary on the wire', () => {
  it("a report survives the agent stream's encoding unchanged, with or without a command", () => {
    const reports: ScanReport[] = [{ commandId: 'c-1', policyVersion: 7, summary }, { commandId: null, policyVersion: 0, summary }, { commandId: 'c-3', policyVersion: 7, summary, failure: 'no policy applied yet' }];
    for (const report of reports) {
      const bytes = toBinary(ScanReportSchema, create(ScanReportSchema, scanReportToPb(report)));
      assert.deepEqual(scanReportFromPb(fromBinary(ScanReportSchema, bytes)), report);
    }
  });

  it('the report and the admin API carry the one ScanSummary message', () => {
    const status = create(CommandStatusSchema, { id: 'c-1', scan: scanSummaryToPb(summary) });
    const back = fromBinary(CommandStatusSchema, toBinary(CommandStatusSchema, status));
    assert.equal(back.scan?.$typeName, ScanSummarySchema.typeName);
    assert.equal(create(ScanReportSchema, scanReportToPb({ commandId: null, policyVersion: 1, summary })).summary?.$typeName, ScanSummarySchema.typeName);
    assert.deepEqual(scanSummaryFromPb(back.scan), summary);
  });

  it('refuses a report without its summary or a summary without its times', () => {
    assert.throws(() => scanReportFromPb(create(ScanReportSchema, { commandId: 'c-2' })), (e: unknown) => e instanceof ContractError && /scan summary is missing/.test(e.message));
    const noStart = create(ScanSummarySchema, { ...scanSummaryToPb(summary), startedAt: undefined });
    assert.throws(() => scanSummaryFromPb(noStart), (e: unknown) => e instanceof ContractError && /started_at is missing/.test(e.message));
    const noEnd = create(ScanSummarySchema, { ...scanSummaryToPb(summary), finishedAt: undefined });
    assert.throws(() => scanSummaryFromPb(noEnd), /finished_at is missing/);
  });
});
