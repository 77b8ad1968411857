import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { pathProblem } from './path-check.js';
import { ATTRIBUTES, HASH_ALGORITHMS, type Attribute, type Policy, type PolicyLimits, type PolicyRule } from './model.js';
import { VigilError } from './errors.js';
import { DEFAULT_LIMITS, defineRule, GROUP_R } from './policy-defaults.js';

export { DEFAULT_LIMITS, defineRule };

/** A policy document or label set that does not fit the schema; the message names the field. */
export class PolicyError extends VigilError<'invalid_policy'> {
  override readonly name = 'PolicyError';
}

/**
 * The policy document, one schema for the operator's YAML and the wire (the wire form is checked by
 * turning it back into this document):
 *
 *   rules:
 *     - name: bin               # unique, [A-Za-z0-9._-]
 *       paths: [/usr/bin]       # absolute; directories are walked, files checked alone
 *       include: ["**"]         # picomatch globs a path must match to be recorded (default: all)
 *       exclude: ["**\/*.pyc"]  # picomatch globs on the full path (default: none)
 *       depth: 8                # levels below each path: 1 = its own entries (default: no limit)
 *       one_filesystem: true    # stay on each path's file system (default true)
 *       follow_symlinks: false  # walk into directories symlinks point to (default false)
 *       attributes: R           # what a change is: a group or names joined with + and -,
 *                               # e.g. "R-mtime", "L+size", or a list (default R)
 *       hash: sha256            # sha256 (default), sha512 or blake2b512
 *       max_hash_size: 1GiB     # bigger files are checked by stat only (default: no limit)
 *       recheck: 12h            # stat-only re-check interval (default 12h)
 *       rehash: 7d              # full re-hash interval (default 7d)
 *       alert: true             # a change here posts an alert (default false)
 *       selector: {env: prod}   # only agents with these labels (default: all)
 *   limits:
 *     max_files_per_rule: 2000000   # default: no limit
 *     nice: 10                      # niceness of the hashing threads (default 10)
 *     io_mb_per_s: 50               # read rate of hashing, all threads (default: no limit)
 *     queue_size: 256MiB            # the agent's outgoing queue on disk at most; beyond it the
 *                                   # agent records "resync needed" and reconciles (default 256MiB)
 *     max_watches: 100000           # directories watched in real time at most; the rest are left
 *                                   # to scheduled scans, shown as "scheduled only" (default: the
 *                                   # kernel's fs.inotify.max_user_watches)
 *
 * Groups (as AIDE's): R = type+perm+inode+nlink+owner+group+size+mtime+ctime+hash;
 * L = type+perm+inode+nlink+owner+group; > = L+growing (a log: it may grow, not shrink);
 * E = nothing but existence. AIDE's letters work too: p i n u g s m c S, sha256 for hash, and X
 * for xattrs (a digest of every extended attribute: ACLs, SELinux labels and file capabilities
 * included); acl and selinux (AIDE's names) record the values of the POSIX ACLs and of the
 * SELinux label, so that a change says which one changed.
 * Unknown keys are errors that name the key.
 */
const GROUPS: Record<string, readonly Attribute[]> = {
  R: GROUP_R,
  L: ['type', 'perm', 'inode', 'nlink', 'owner', 'group'],
  '>': ['type', 'perm', 'inode', 'nlink', 'owner', 'group', 'growing'],
  E: [],
};
const LETTERS: Record<string, Attribute> = { p: 'perm', i: 'inode', n: 'nlink', u: 'owner', g: 'group', s: 'size', m: 'mtime', c: 'ctime', S: 'growing', sha256: 'hash', ftype: 'type', X: 'xattrs' };

/** Expands "R-mtime+growing" (or a list of such terms) into attribute names, in a fixed order. */
export function expandAttributes(spec: string | readonly string[]): Attribute[] {
  const out = new Set<Attribute>();
  const terms = typeof spec === 'string' ? [spec] : spec;
  for (const term of terms) {
    const parts = term.replace(/\s+/g, '').match(/[+-]?[^+-]+|[+-]>/g) ?? [];
    for (const raw of parts) {
      const minus = raw.startsWith('-');
      const name = raw.replace(/^[+-]/, '');
      const expanded = GROUPS[name] ?? (LETTERS[name] ? [LETTERS[name]] : (ATTRIBUTES as readonly string[]).includes(name) ? [name as Attribute] : null);
      if (!expanded) throw new PolicyError('invalid_policy', `unknown attribute or group "${name}" (groups R L > E; names ${ATTRIBUTES.join(' ')})`);
      for (const a of expanded) minus ? out.delete(a) : out.add(a);
    }
  }
  return ATTRIBUTES.filter((a) => out.has(a));
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };
const Duration = z
  .string()
  .regex(/^\d+[smhd]$/, 'a duration like 30m, 12h or 7d')
  .transform((t) => Number(t.slice(0, -1)) * UNITS[t.slice(-1)]!)
  .refine((n) => n >= 60 && n <= 365 * 86400, 'between 1m and 365d');
const Size = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/, 'a size like 500MB or 1GiB')])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(v)!;
    return Math.round(Number(m[1]) * SIZE_UNITS[m[2]!]!);
  });
const Attributes = z
  .union([z.string(), z.array(z.string())])
  .transform((v, ctx) => {
    try {
      return expandAttributes(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

export const LABEL_KEY = z.string().regex(/^[A-Za-z0-9._/-]{1,63}$/, 'label keys are 1-63 characters of A-Z a-z 0-9 . _ / -');
export const LABEL_VALUE = z.string().regex(/^[A-Za-z0-9._-]{0,63}$/, 'label values are 0-63 characters of A-Z a-z 0-9 . _ -');

/** Validates agent labels (from `tokens create --label`); the error names the label. */
export function validateLabels(labels: Record<string, string>): Record<string, string> {
  const res = z.record(LABEL_KEY, LABEL_VALUE).refine((l) => Object.keys(l).length <= 32, 'at most 32 labels').safeParse(labels);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const where = issue.path.length ? `label "${String(issue.path[0])}"` : 'labels';
    throw new PolicyError('invalid_policy', `${where}: ${issue.message}`);
  }
  return res.data;
}

const Glob = z.string().min(1).max(1024);

const RuleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
    paths: z
      .array(
        z
          .string()
          .startsWith('/', 'must be an absolute path')
          .max(4096)
          // A trailing slash is dropped (`/etc/` is `/etc`); every other odd form is refused, so
          // that the paths the agent reports under a root are normalised (path-check.ts).
          .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') || '/' : p))
          .refine((p) => pathProblem(Buffer.from(p)) === null, { message: 'must be a normalised absolute path (no ".", ".." or empty segments, no NUL)' }),
      )
      .min(1, 'needs at least one path'),
    include: z.array(Glob).default([]),
    exclude: z.array(Glob).default([]),
    depth: z.number().int().min(0).max(4096).optional(),
    one_filesystem: z.boolean().default(true),
    follow_symlinks: z.boolean().default(false),
    attributes: Attributes.default(GROUPS.R as Attribute[]),
    hash: z.enum(HASH_ALGORITHMS).default('sha256'),
    max_hash_size: Size.optional(),
    recheck: Duration.default(12 * 3600),
    rehash: Duration.default(7 * 86400),
    alert: z.boolean().default(false),
    selector: z.record(LABEL_KEY, LABEL_VALUE).default({}),
  })
  .strict();

const LimitsSchema = z
  .object({
    max_files_per_rule: z.number().int().positive().optional(),
    nice: z.number().int().min(0).max(19).default(10),
    io_mb_per_s: z.number().positive().max(100_000).optional(),
    queue_size: Size.optional(),
    max_watches: z.number().int().positive().optional(),
  })
  .strict();

const PolicySchema = z
  .object({
    rules: z.array(RuleSchema).max(1000),
    limits: LimitsSchema.default({ nice: 10 }),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.rules.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `duplicate rule name "${r.name}"` });
      seen.add(r.name);
    });
  });

function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
}

/** Validates a policy document (already parsed from YAML, or made by policyToDocument); the error names the field. */
export function validatePolicy(doc: unknown, source = 'policy'): { rules: PolicyRule[]; limits: PolicyLimits } {
  const res = PolicySchema.safeParse(doc, {
    error: (iss) => (iss.code === 'invalid_type' && iss.input === undefined ? 'missing (required)' : undefined),
  });
  if (!res.success) {
    // An unknown key explains more than the missing one it was probably meant to be.
    const issue = res.error.issues.find((i) => i.code === 'unrecognized_keys') ?? res.error.issues[0]!;
    let field = fieldName(issue.path);
    if (issue.code === 'unrecognized_keys') field = fieldName([...issue.path, issue.keys[0]!]);
    const what = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message;
    throw new PolicyError('invalid_policy', `${source}: ${field || '(top level)'}: ${what}`);
  }
  return {
    rules: res.data.rules.map((r) => ({
      name: r.name,
      paths: r.paths,
      exclude: r.exclude,
      alert: r.alert,
      selector: r.selector,
      include: r.include,
      maxDepth: r.depth ?? null,
      crossFileSystems: !r.one_filesystem,
      attributes: r.attributes,
      maxHashBytes: r.max_hash_size ?? null,
      recheckSeconds: r.recheck,
      rehashSeconds: r.rehash,
      hashAlgorithm: r.hash,
      followSymlinks: r.follow_symlinks,
    })),
    limits: {
      maxFilesPerRule: res.data.limits.max_files_per_rule ?? null,
      nice: res.data.limits.nice,
      ioBytesPerSecond: res.data.limits.io_mb_per_s ? Math.round(res.data.limits.io_mb_per_s * 1e6) : null,
      queueBytes: res.data.limits.queue_size ?? null,
      maxWatches: res.data.limits.max_watches ?? null,
    },
  };
}

/** The document form of a policy (what YAML holds), so that wire input is checked by the same schema. */
export function policyToDocument(p: Pick<Policy, 'rules' | 'limits'>): unknown {
  return {
    rules: p.rules.map((r) => ({
      name: r.name,
      paths: r.paths,
      include: r.include,
      exclude: r.exclude,
      ...(r.maxDepth !== null ? { depth: r.maxDepth } : {}),
      one_filesystem: !r.crossFileSystems,
      follow_symlinks: r.followSymlinks,
      attributes: [...r.attributes].join('+') || 'E',
      hash: r.hashAlgorithm,
      ...(r.maxHashBytes !== null ? { max_hash_size: r.maxHashBytes } : {}),
      recheck: `${r.recheckSeconds}s`,
      rehash: `${r.rehashSeconds}s`,
      alert: r.alert,
      selector: r.selector,
    })),
    limits: {
      ...(p.limits.maxFilesPerRule !== null ? { max_files_per_rule: p.limits.maxFilesPerRule } : {}),
      nice: p.limits.nice,
      ...(p.limits.ioBytesPerSecond !== null ? { io_mb_per_s: p.limits.ioBytesPerSecond / 1e6 } : {}),
      ...(p.limits.queueBytes != null ? { queue_size: p.limits.queueBytes } : {}),
      ...(p.limits.maxWatches != null ? { max_watches: p.limits.maxWatches } : {}),
    },
  };
}

/** Parses and validates a YAML policy file. */
export function parsePolicyYaml(text: string, source = 'policy'): { rules: PolicyRule[]; limits: PolicyLimits } {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (cause) {
    const where = cause instanceof YAMLParseError && cause.linePos ? ` line ${cause.linePos[0].line}` : '';
    throw new PolicyError('invalid_policy', `${source}:${where}: not valid YAML`, { cause });
  }
  return validatePolicy(doc, source);
}
