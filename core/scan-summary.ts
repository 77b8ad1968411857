/**
 * What one scan found, in one shape from the agent's monitor to vigilctl: the agent reports it on
 * its stream (proto/scan-summary.ts maps it to and from the wire), the controller stores it with
 * the command that asked for the scan (controller/store/scan-summary-codec.ts) and hands it back.
 */
export interface ScanSummary {
  readonly filesScanned: number;
  readonly changes: number;
  readonly errors: number;
  readonly startedAt: Date;
  readonly finishedAt: Date;
}

/** A scan report on the agent's stream: the summary, with what the scan ran for. */
export interface ScanReport {
  /** The command that asked for the scan; null for a scan the agent started itself. */
  readonly commandId: string | null;
  /** The policy version the scan ran under (0: none). */
  readonly policyVersion: number;
  readonly summary: ScanSummary;
  /**
   * Set when the command failed or the agent refused it: why. The summary then covers what was
   * done before it stopped. Absent when it ran.
   */
  readonly failure?: string;
}
