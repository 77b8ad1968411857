import type { FileDelta } from '../core/model.js';

/**
 * The changes one agent's batch committed (new history rows, in seq order), for a program that
 * runs the controller in-process and shows them (the quickstart). Called after the commit, before
 * alerts are sent.
 */
export interface RecordedChanges {
  readonly agentId: string;
  readonly hostname: string;
  readonly changes: readonly FileDelta[];
}

export type OnChangesRecorded = (recorded: RecordedChanges) => void;
