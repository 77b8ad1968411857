import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import type { PolicyRule } from './model.js';
import { VigilError } from '../pki/errors.js';

/** A policy document or label set that does not fit the schema; the message names the field. */
export class PolicyError extends VigilError<'invalid_policy'> {
  override readonly name = 'PolicyError';
}

/**
 * The policy document, one schema for the operator's YAML and the wire:
 *
 *   rules:
 *     - name: etc            # unique, [A-Za-z0-9._-]
 *       paths: [/etc]        # absolute paths, watched recursively
 *       exclude: ["**\/*.swp"]  # picomatch globs on the full path (optional)
 *       alert: true          # a change here posts an alert (default false)
 *       selector: {env: prod} # only agents with these labels (optional; default all)
 *
 * Unknown keys are errors that name the key.
 */
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

const RuleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 . _ -'),
    paths: z
      .array(z.string().startsWith('/', 'must be an absolute path').max(4096))
      .min(1, 'needs at least one path'),
    exclude: z.array(z.string().min(1).max(1024)).default([]),
    alert: z.boolean().default(false),
    selector: z.record(LABEL_KEY, LABEL_VALUE).default({}),
  })
  .strict();

const PolicySchema = z
  .object({
    rules: z.array(RuleSchema).max(1000),
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

/** Validates a policy document (already parsed); the error names the field. */
export function validatePolicy(doc: unknown, source = 'policy'): PolicyRule[] {
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
  return res.data.rules;
}

/** Parses and validates a YAML policy file. */
export function parsePolicyYaml(text: string, source = 'policy'): PolicyRule[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (cause) {
    const where = cause instanceof YAMLParseError && cause.linePos ? ` line ${cause.linePos[0].line}` : '';
    throw new PolicyError('invalid_policy', `${source}:${where}: not valid YAML`, { cause });
  }
  return validatePolicy(doc, source);
}
