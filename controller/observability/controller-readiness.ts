import type { Sql } from '../store/index.js';

/**
 * When a controller replica may take agents (/readyz): its database is open and migrated, its
 * listeners are up (and not closing), and Postgres answers now. A load balancer health-checking
 * /readyz sends no agent to a replica that would fail its stream.
 */
export interface ControllerReadiness {
  /** The database is open and migrated. */
  databaseReady(sql: Sql): void;
  /** The agents' and enrolment listeners are up. */
  listening(): void;
  /** The replica is stopping: not ready from now on. */
  stopping(): void;
  /** Null when ready; otherwise why not. */
  notReady(): Promise<string | null>;
}

export function createControllerReadiness(opts: { probeTimeoutMs?: number } = {}): ControllerReadiness {
  const timeoutMs = opts.probeTimeoutMs ?? 2000;
  let sql: Sql | null = null;
  let up = false;
  let closing = false;
  return {
    databaseReady: (s) => {
      sql = s;
    },
    listening: () => {
      up = true;
    },
    stopping: () => {
      closing = true;
    },
    async notReady() {
      if (closing) return 'stopping';
      if (!sql) return 'database not open or migrations not done';
      if (!up) return 'listeners not up';
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          sql.query('select 1'),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return null;
      } catch (err) {
        return `Postgres unreachable (${err instanceof Error ? err.message : String(err)})`;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
