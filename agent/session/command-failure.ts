import type { ScanReport } from '../../core/scan-summary.js';

/**
 * The report of a command that failed or was refused: nothing scanned, and why. The controller
 * marks the command failed with this reason instead of waiting for a report until it expires.
 */
export function failedCommandReport(commandId: string, failure: string, now: Date): ScanReport {
  return { commandId, policyVersion: 0, summary: { filesScanned: 0, changes: 0, errors: 0, startedAt: now, finishedAt: now }, failure };
}
