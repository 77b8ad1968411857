// The fleet benchmark's output: the table of measures, and a summary of a controller CPU profile.
import { readFileSync } from 'node:fs';

/** Nearest-rank percentile of an ascending array (null when empty). */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const ascending = (xs) => [...xs].sort((a, b) => a - b);

const int = (n) => Math.round(n).toLocaleString('en-US');
export const fmt = {
  int,
  perSecond: (n) => `${int(n)}/s`,
  ms: (n) => (n == null ? '—' : n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${int(n)} ms`),
  s: (ms) => (ms == null ? '—' : `${(ms / 1000).toFixed(2)} s`),
  kb: (bytes) => `${int(bytes / 1024)} KB`,
  mb: (bytes) => `${int(bytes / 1024 / 1024)} MB`,
  ratio: (x) => (x == null || !Number.isFinite(x) ? '—' : `${x.toFixed(2)}×`),
};

/**
 * A row: measure, value, reference (the bare figure measured in the same run), ratio, target,
 * and pass (true/false/null when the run has no target for it).
 */
export function row(measure, value, { reference = '—', ratio = null, target = '—', pass = null } = {}) {
  return { measure, value, reference, ratio: ratio == null ? '—' : fmt.ratio(ratio), target, pass };
}

/** A Markdown table of rows (also readable in a terminal). */
export function table(rows) {
  const head = ['measure', 'value', 'bare reference (same run)', 'ratio', 'target', 'met'];
  const cells = rows.map((r) => [r.measure, r.value, r.reference, r.ratio, r.target, r.pass == null ? '' : r.pass ? 'yes' : 'NO']);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => String(c[i]).length)));
  const line = (c) => `| ${c.map((x, i) => String(x).padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

/** Where a profile node's code lives: a dist/ file, an npm package, node's internals, or V8. */
function where(url) {
  if (!url) return '(native / V8)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 14).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const d = url.indexOf('/dist/');
  if (d >= 0) return `dist/${url.slice(d + 6)}`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

/**
 * Summarizes a .cpuprofile (node --cpu-prof): self time per function and per place (package or
 * file), each as ms and share of the profile's samples, the top `n` of each. Each function also
 * names the controller code (dist/) it was called from most, the nearest dist/ frame above it.
 * With a window ([from, to], CLOCK_MONOTONIC µs), only the samples taken in it.
 */
export function summarizeProfile(file, n = 15, window = null) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of prof.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const self = new Map();
  // window: [from, to] in CLOCK_MONOTONIC µs (the samples' clock): only the samples taken then.
  let at = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    at += prof.timeDeltas[i] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const ours = (url) => url.includes('/dist/') && !url.includes('/node_modules/');
  const label = ({ functionName, url, lineNumber }) => `${functionName || '(anonymous)'} ${where(url)}${url ? `:${lineNumber + 1}` : ''}`;
  const fns = new Map();
  const places = new Map();
  for (const [id, us] of self) {
    const frame = byId.get(id).callFrame;
    const fn = label(frame);
    const entry = fns.get(fn) ?? { us: 0, via: new Map() };
    entry.us += us;
    if (!ours(frame.url)) {
      let p = parent.get(id);
      while (p !== undefined && !ours(byId.get(p).callFrame.url)) p = parent.get(p);
      const via = p === undefined ? '' : label(byId.get(p).callFrame);
      entry.via.set(via, (entry.via.get(via) ?? 0) + us);
    }
    fns.set(fn, entry);
    const place = where(frame.url);
    places.set(place, (places.get(place) ?? 0) + us);
  }
  const share = (us) => Number(((100 * us) / total).toFixed(1));
  const functions = [...fns.entries()]
    .sort((a, b) => b[1].us - a[1].us)
    .slice(0, n)
    .map(([name, { us, via }]) => ({ name, ms: Math.round(us / 1000), share: share(us), via: [...via.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] || null }));
  const placeList = [...places.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), share: share(us) }));
  const idle = fns.get('(idle) (native / V8)')?.us ?? 0;
  return { file, totalMs: Math.round(total / 1000), busyMs: Math.round((total - idle) / 1000), functions, places: placeList };
}

/** The profile summary as text lines. */
export function profileText(summary) {
  const lines = [`controller CPU profile ${summary.file}: ${summary.totalMs} ms sampled, ${summary.busyMs} ms not idle`, 'self time by function (called from):'];
  for (const f of summary.functions) lines.push(`  ${String(f.ms).padStart(7)} ms ${String(f.share).padStart(5)} %  ${f.name}${f.via ? `  (from ${f.via})` : ''}`);
  lines.push('self time by package / file:');
  for (const p of summary.places) lines.push(`  ${String(p.ms).padStart(7)} ms ${String(p.share).padStart(5)} %  ${p.name}`);
  return lines.join('\n');
}
