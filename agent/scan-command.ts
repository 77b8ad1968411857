import { fileStateJson, pathJson } from '../core/file-state-json.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { displayPath, type ChangeKind, type FileState, type PolicyLimits, type PolicyRule } from '../core/model.js';
import { defineRule } from '../core/policy-defaults.js';
import { attributesJson } from '../core/xattr-encoding.js';
import { createPathRules } from '../core/policy-match.js';
import { AgentError } from './errors.js';
import type { LocalStore } from './store/local-store.js';
import { createHashPool } from './scan/hash-pool.js';
import { scanTree, type ScanCounts } from './scan/scan-tree.js';
import { walkScope } from './scan/walk-scope.js';
import { walkSorted } from './scan/walker.js';
import { stateDir as stateDirLayout } from './state-dir.js';

export interface ScanCommandOptions {
  readonly paths: readonly string[];
  readonly policyFile?: string;
  readonly json: boolean;
  /** Compare against (and update) the baseline kept here. */
  readonly stateDir?: string;
  readonly fullHash: boolean;
  readonly threads?: number;
  readonly out: Writable;
  /** Progress and summary go here (a terminal shows a progress bar). */
  readonly err: Writable & { isTTY?: boolean };
}

export interface ScanCommandResult extends ScanCounts {
  readonly seconds: number;
  readonly byKind: Record<ChangeKind, number>;
}

function stateJson(path: Buffer, s: FileState, change: ChangeKind | null) {
  return { ...pathJson(path), ...fileStateJson(s), change };
}

async function rulesFor(opts: ScanCommandOptions): Promise<{ rules: PolicyRule[]; limits: PolicyLimits }> {
  const paths = opts.paths.map((p) => resolve(p));
  if (!opts.policyFile) {
    if (!paths.length) throw new AgentError('invalid_argument', 'give at least one PATH, or --policy FILE');
    // No policy: every attribute, no limits, and full CPU priority (a scan someone is waiting for).
    return { rules: [defineRule({ name: 'scan', paths })], limits: { maxFilesPerRule: null, nice: 0, ioBytesPerSecond: null } };
  }
  // The schema (zod, yaml) loads only when there is a policy to read.
  const { parsePolicyYaml } = await import('../core/policy-schema.js');
  const policy = parsePolicyYaml(await readFile(opts.policyFile, 'utf8'), opts.policyFile);
  if (!paths.length) return policy;
  // PATHs given with a policy: scanned with the options of its first rule.
  const first = policy.rules[0];
  return { rules: [defineRule({ ...(first ?? {}), name: 'scan', paths })], limits: policy.limits };
}

const human = (bytes: number) =>
  bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : bytes >= 1e3 ? `${(bytes / 1e3).toFixed(1)} kB` : `${Math.round(bytes)} B`;

/**
 * `vigil-agent scan`: a local scan without a controller. Without --state-dir every path is new;
 * with it, the scan compares against the baseline kept there and updates it (a second run over an
 * unchanged tree is the stat-only re-check). When that directory belongs to an enrolled agent, the
 * changes are queued for its controller too.
 */
/** Changes the text output lists at most (--json lists every one). */
const LISTED_CHANGES = 50;

export async function runScanCommand(opts: ScanCommandOptions): Promise<ScanCommandResult> {
  const { rules, limits } = await rulesFor(opts);
  const pathRules = createPathRules(rules);
  const covers = (p: Buffer) => pathRules.match(p) !== null;
  const allPaths = rules.flatMap((r) => r.paths);
  const roots = [...new Set(allPaths)].filter((r) => !allPaths.some((o) => o !== r && r.startsWith(o.endsWith('/') ? o : `${o}/`))).map((r) => Buffer.from(r));

  const pool = createHashPool({ ...(opts.threads ? { threads: opts.threads } : {}), niceIncrement: limits.nice, ioBytesPerSecond: limits.ioBytesPerSecond });
  // The scan threads start now and load their modules while this thread loads the store's.
  pool.shards.start();
  let tempDir: string | undefined;
  let storeDir: string;
  let queue = false;
  if (opts.stateDir) {
    const layout = stateDirLayout(opts.stateDir);
    storeDir = layout.db;
    queue = existsSync(layout.identity);
  } else {
    tempDir = mkdtempSync(join(tmpdir(), 'vigil-scan-'));
    storeDir = tempDir;
  }
  let store: LocalStore;
  try {
    const { openLocalStore } = await import('./store/local-store.js');
    store = openLocalStore(storeDir);
  } catch (err) {
    await pool.close();
    throw err;
  }
  const changes = new Map<string, ChangeKind>();
  const byKind: Record<ChangeKind, number> = { created: 0, modified: 0, deleted: 0, attributes: 0, refreshed: 0 };
  const counts: ScanCounts = { files: 0, bytes: 0, errors: 0, changes: 0 };
  // The bar's module loads only for a terminal.
  const cliProgress = opts.err.isTTY && !opts.json ? (await import('cli-progress')).default : null;
  const bar = cliProgress ? new cliProgress.SingleBar({ format: ' {bar} {percentage}% | {value}/{total} paths | {size} | {rate} | ETA {eta_formatted}', hideCursor: true, stream: opts.err }, cliProgress.Presets.shades_classic) : null;
  const t0 = process.hrtime.bigint();
  try {
    if (bar) {
      // A quick count (directory listings only) so that the bar can say how long is left.
      let total = 0;
      for (const root of roots) for (const e of walkSorted(root, { ...walkScope(root, pathRules), listDirectory: null })) if (covers(e.path)) total++;
      bar.start(total, 0, { size: human(0), rate: '-' });
    }
    for (const root of roots) {
      await scanTree(
        root,
        {
          store,
          pool,
          clock: () => new Date(),
          rules: pathRules,
          maxFilesPerRule: limits.maxFilesPerRule,
          fullHash: opts.fullHash,
          source: 'scan',
          record: (batch) => {
            for (const c of batch) {
              byKind[c.kind]++;
              if (c.kind === 'refreshed') continue; // not a change under the rule
              if (opts.json) changes.set(c.path.toString('latin1'), c.kind);
              else if (opts.stateDir && changes.size < LISTED_CHANGES) changes.set(c.path.toString('latin1'), c.kind);
            }
            store.journal.record(batch, { queue });
          },
          onProgress: (c) => {
            const secs = Number(process.hrtime.bigint() - t0) / 1e9;
            bar?.update(c.files, { size: human(c.bytes), rate: `${human(c.bytes / Math.max(secs, 0.001))}/s` });
          },
        },
        counts,
      );
    }
    bar?.update(counts.files);
    bar?.stop();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (opts.json) {
      // Streamed: one state per line inside the array, never the whole tree in one string.
      opts.out.write('[');
      let first = true;
      for (const root of roots) {
        for (const { path, state } of store.baseline.under(root)) {
          opts.out.write(`${first ? '\n' : ',\n'}${JSON.stringify(stateJson(path, state, changes.get(path.toString('latin1')) ?? null))}`);
          first = false;
        }
      }
      for (const [p, kind] of changes) if (kind === 'deleted') opts.out.write(`${first ? '\n' : ',\n'}${JSON.stringify({ path: displayPath(Buffer.from(p, 'latin1')), change: 'deleted' })}`), (first = false);
      opts.out.write('\n]\n');
    } else {
      if (opts.stateDir) for (const [p, kind] of changes) opts.out.write(`${kind.padEnd(10)} ${displayPath(Buffer.from(p, 'latin1'))}\n`);
      const total = byKind.created + byKind.modified + byKind.deleted + byKind.attributes;
      if (opts.stateDir && total > changes.size) opts.err.write(`${changes.size} of ${total} changes listed; --json lists them all\n`);
      const rate = human(counts.bytes / Math.max(seconds, 0.001));
      if (counts.limited?.length) opts.err.write(`file limit reached for rule(s) ${counts.limited.join(', ')}: paths past it were not scanned\n`);
      opts.err.write(
        `scanned ${counts.files} paths, ${human(counts.bytes)} read, in ${seconds.toFixed(2)} s (${rate}/s, ${pool.threads} scan threads): ` +
          `${byKind.created} created, ${byKind.modified} modified, ${byKind.deleted} deleted, ${byKind.attributes} attributes, ${counts.errors} errors\n`,
      );
    }
    return { ...counts, seconds, byKind };
  } finally {
    bar?.stop();
    await pool.close();
    await store.close();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}
