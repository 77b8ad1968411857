import type { ChangeKind } from '../../core/model.js';

/** One alert, as a notifier sees it; assembled by the outbox (outbox.ts) alone. */
export interface Alert {
  /** Its row in the outbox (alerts.id). */
  readonly id: number;
  readonly agentId: string;
  readonly hostname: string;
  /** The policy rule that made the change alert. */
  readonly rule: string;
  readonly seq: number;
  readonly kind: ChangeKind;
  /** Display form (core/model.ts displayPath). */
  readonly path: string;
  /** Hex, when the change has a content digest. */
  readonly sha256: string | null;
  readonly detectedAt: Date;
}

/** Something about Vigil's own security an operator must see (e.g. a possibly stolen credential). */
export interface SecurityEvent {
  readonly kind: 'duplicate_stream';
  readonly agentId: string;
  readonly text: string;
}

/** Where alerts go: Slack, or the controller's log when Slack is not configured. */
export interface Notifier {
  readonly name: string;
  notify(alert: Alert): Promise<void>;
  security(event: SecurityEvent): Promise<void>;
}

export function formatAlertText(a: Alert): string {
  const hash = a.sha256 ? ` sha256 ${a.sha256.slice(0, 16)}…` : '';
  return `:rotating_light: Vigil: ${a.path} ${a.kind} on ${a.hostname || a.agentId} (rule ${a.rule}, seq ${a.seq})${hash} at ${a.detectedAt.toISOString()}`;
}
