import { z } from 'zod';
import type { ScanSummary } from '../../core/scan-summary.js';
import { ControllerError } from '../errors.js';

/**
 * A scan summary as commands.result holds it (jsonb): counts, and times as ISO strings. The one
 * place that writes and reads that JSON; a row that does not match is an internal error, never a
 * guess.
 */
const StoredScanSummary = z.strictObject({
  filesScanned: z.number().int().nonnegative(),
  changes: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
});

export type StoredScanSummary = z.infer<typeof StoredScanSummary>;

export function encodeScanSummary(s: ScanSummary): StoredScanSummary {
  return {
    filesScanned: s.filesScanned,
    changes: s.changes,
    errors: s.errors,
    startedAt: s.startedAt.toISOString(),
    finishedAt: s.finishedAt.toISOString(),
  };
}

/** `json` as the driver returns jsonb (parsed already). */
export function decodeScanSummary(json: unknown, where: string): ScanSummary {
  const parsed = StoredScanSummary.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ControllerError('internal', `${where}: not a stored scan summary (${issue ? `${issue.path.join('.') || '(top level)'}: ${issue.message}` : 'invalid'})`);
  }
  const s = parsed.data;
  return { filesScanned: s.filesScanned, changes: s.changes, errors: s.errors, startedAt: new Date(s.startedAt), finishedAt: new Date(s.finishedAt) };
}
