import { createAgentStore, type AgentStore } from './agent-store.js';
import { createAlertStore, type AlertStore } from './alert-store.js';
import { createAuditStore, type AuditStore } from './audit-store.js';
import { createCertificateStore, type CertificateStore } from './certificate-store.js';
import type { Clock } from './clock.js';
import { createCommandStore, type CommandStore } from './command-store.js';
import { createEnrolFailureStore, type EnrolFailureStore } from './enrol-failure-store.js';
import { createEventStore, type EventStore } from './event-store.js';
import { createPolicyStore, type PolicyStore } from './policy-store.js';
import { createPresenceStore, type PresenceStore } from './presence-store.js';
import type { Sql } from './sql.js';
import { createStateStore, type StateStore } from './state-store.js';
import { createSyncStore, type SyncStore } from './sync-store.js';
import { createTokenStore, type TokenStore } from './token-store.js';

/** Every store over one database, named as the services' dependencies name them. */
export interface Stores {
  readonly agents: AgentStore;
  readonly events: EventStore;
  readonly files: StateStore;
  readonly sync: SyncStore;
  readonly policies: PolicyStore;
  readonly presence: PresenceStore;
  readonly commands: CommandStore;
  readonly certificates: CertificateStore;
  readonly tokens: TokenStore;
  readonly enrolFailures: EnrolFailureStore;
  readonly audit: AuditStore;
  readonly alertStore: AlertStore;
}

export function createStores(sql: Sql, clock: Clock): Stores {
  return {
    agents: createAgentStore(sql, clock),
    events: createEventStore(sql, clock),
    files: createStateStore(sql),
    sync: createSyncStore(sql),
    policies: createPolicyStore(sql, clock),
    presence: createPresenceStore(sql),
    commands: createCommandStore(sql, clock),
    certificates: createCertificateStore(sql, clock),
    tokens: createTokenStore(sql, clock),
    enrolFailures: createEnrolFailureStore(sql),
    audit: createAuditStore(sql, clock),
    alertStore: createAlertStore(sql, clock),
  };
}
