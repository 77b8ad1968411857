#!/usr/bin/env node
// Scan benchmark: alternates, in one run and on the same tree, `vigil-agent scan` (baseline into
// a fresh state directory), ../shared/bench/reference-hash.mjs (the least work hashing can take
// with Node.js) and `aide --init` (sha256); then an unchanged re-check: `vigil-agent scan
// --state-dir` (stat-only) against `aide --check`. Prints every run as a JSON line, then the
// ratios (medians). Wall times from this process; peak RSS from GNU time. An uncounted warm-up
// pass before each round, so that every tool reads from a warm page cache.
//
// The baseline is compared in pairs run back to back (--pairs per round), the order swapped from
// one pair to the next: on this kind of virtual machine the first run after a pause or a long
// AIDE run is slower (memory the host took back is faulted in again), and a fixed order would
// charge that to one tool. The ratio is the median of the pairs' ratios.
//
// usage: node bench/scan.mjs [TREE=/usr] [--rounds N=3] [--pairs N=3] [--no-aide]
// needs: npm run build; apt-get install aide time (for the AIDE columns and RSS)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const tree = resolve(args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a)) ?? '/usr');
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback);
const rounds = option('--rounds', 3);
const pairs = option('--pairs', 3);
const withAide = !args.includes('--no-aide') && spawnSync('aide', ['--version']).status === 0;
const agent = join(here, '..', 'dist', 'agent', 'main.js');
const reference = [join(here, '..', '..', 'shared', 'bench', 'reference-hash.mjs'), join(here, '..', 'shared', 'bench', 'reference-hash.mjs')].find(existsSync);
if (!existsSync(agent)) throw new Error('run `npm run build` first');
if (!reference) throw new Error('reference-hash.mjs not found in ../shared/bench');
const gnuTime = existsSync('/usr/bin/time');
const work = mkdtempSync(join(tmpdir(), 'vigil-bench-'));

/** Runs a command, returns wall seconds and peak RSS (MB, when GNU time is there). */
function timed(cmd, cmdArgs, okCodes = [0]) {
  const full = gnuTime ? ['/usr/bin/time', ['-f', '%M', cmd, ...cmdArgs]] : [cmd, cmdArgs];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full[1], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (!okCodes.includes(r.status)) throw new Error(`${cmd} ${cmdArgs.join(' ')} exited ${r.status}: ${r.stderr.slice(-500)}`);
  const rssKb = gnuTime ? Number(r.stderr.trim().split('\n').pop()) : NaN;
  return { seconds, rssMb: Math.round(rssKb / 1024), stdout: r.stdout, stderr: r.stderr };
}

function aideConf(dir) {
  const conf = join(dir, 'aide.conf');
  writeFileSync(
    conf,
    [
      `database_in=file:${join(dir, 'aide.db')}`,
      `database_out=file:${join(dir, 'aide.db.new')}`,
      'gzip_dbout=no',
      'report_url=stdout',
      'VigilRule = p+i+n+u+g+s+m+c+sha256',
      `${tree} VigilRule`,
      '',
    ].join('\n'),
  );
  return conf;
}

// Warm-up, not counted, before every round: bring the tree back into the page cache. Virtual
// machines that reclaim cold pages (DAMON) evict part of it during the long AIDE runs, and the
// first tool of the next round would pay for the cold reads.
const warmUp = () => timed(process.execPath, [reference, tree]);

const runs = [];
const log = (r) => {
  runs.push(r);
  console.log(JSON.stringify(r));
};
const pairRatios = [];
const selfRatios = []; // against the reference's own time
let pairNo = 0;
for (let round = 1; round <= rounds; round++) {
  warmUp();
  const state = join(work, `state-${round}`);
  for (let k = 0; k < pairs; k++, pairNo++) {
    rmSync(state, { recursive: true, force: true }); // the round's last baseline is re-checked below
    const vigil = () => {
      const v = timed(process.execPath, [agent, 'scan', tree, '--state-dir', state]);
      log({ round, pair: pairNo + 1, tool: 'vigil-scan', phase: 'baseline', seconds: +v.seconds.toFixed(3), rssMb: v.rssMb });
      return v.seconds;
    };
    const ref = () => {
      const r = timed(process.execPath, [reference, tree]);
      // The reference prints its own time too (from its walk's start, without Node's start-up):
      // kept as selfSeconds; the ratio compares wall time with wall time.
      const { seconds: selfSeconds, ...figures } = JSON.parse(r.stdout);
      log({ round, pair: pairNo + 1, tool: 'reference-hash', phase: 'baseline', seconds: +r.seconds.toFixed(3), selfSeconds, rssMb: r.rssMb, ...figures });
      return { wall: r.seconds, self: selfSeconds };
    };
    let v, r;
    if (pairNo % 2 === 0) {
      v = vigil();
      r = ref();
    } else {
      r = ref();
      v = vigil();
    }
    pairRatios.push(v / r.wall);
    selfRatios.push(v / r.self);
  }
  let conf;
  if (withAide) {
    const aideDir = join(work, `aide-${round}`);
    spawnSync('mkdir', ['-p', aideDir]);
    conf = aideConf(aideDir);
    const a = timed('aide', ['--config', conf, '--init']);
    renameSync(join(aideDir, 'aide.db.new'), join(aideDir, 'aide.db'));
    log({ round, tool: 'aide', phase: 'baseline', seconds: +a.seconds.toFixed(3), rssMb: a.rssMb });
  }
  const rc = timed(process.execPath, [agent, 'scan', tree, '--state-dir', state]);
  log({ round, tool: 'vigil-scan', phase: 'recheck', seconds: +rc.seconds.toFixed(3), rssMb: rc.rssMb, summary: rc.stderr.trim().split('\n').filter((l) => l.startsWith('scanned')).pop() });
  if (withAide) {
    const ac = timed('aide', ['--config', conf, '--check'], [0, 1, 2, 3, 4, 5, 6, 7]);
    log({ round, tool: 'aide', phase: 'recheck', seconds: +ac.seconds.toFixed(3), rssMb: ac.rssMb });
  }
}
rmSync(work, { recursive: true, force: true });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const m = (tool, phase, key = 'seconds') => median(runs.filter((r) => r.tool === tool && r.phase === phase).map((r) => r[key]));
const summary = {
  tree,
  rounds,
  cpus: cpus().length,
  node: process.version,
  baseline: {
    vigilSeconds: m('vigil-scan', 'baseline'),
    referenceSeconds: m('reference-hash', 'baseline'),
    vsReference: +median(pairRatios).toFixed(2),
    pairRatios: pairRatios.map((x) => +x.toFixed(2)),
    vsReferenceSelfTimed: +median(selfRatios).toFixed(2),
    ...(withAide ? { aideSeconds: m('aide', 'baseline'), fasterThanAide: +(m('aide', 'baseline') / m('vigil-scan', 'baseline')).toFixed(1) } : {}),
    vigilPeakRssMb: Math.max(...runs.filter((r) => r.tool === 'vigil-scan' && r.phase === 'baseline').map((r) => r.rssMb)),
  },
  recheck: {
    vigilSeconds: m('vigil-scan', 'recheck'),
    ...(withAide ? { aideSeconds: m('aide', 'recheck'), fasterThanAide: +(m('aide', 'recheck') / m('vigil-scan', 'recheck')).toFixed(1) } : {}),
    vigilPeakRssMb: Math.max(...runs.filter((r) => r.tool === 'vigil-scan' && r.phase === 'recheck').map((r) => r.rssMb)),
  },
  targets: 'baseline <= 1.25x reference, >= 5x faster than aide --init; recheck < 1.5 s and >= 40x faster than aide --check; RSS < 300 MB',
};
console.log(JSON.stringify(summary, null, 2));
