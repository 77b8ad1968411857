import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { ControllerError } from './errors.js';

const hostPort = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected HOST:PORT');
const duration = z.string().regex(/^\d+[smhd]$/, 'expected a duration like 30s, 15m, 1h or 7d');

/**
 * The controller's YAML config file (`vigil-controller --config FILE`; docs/deploy.md, "Config
 * files"): the same settings as the flags and environment variables, which override it. Keys are
 * snake_case; an unknown key is an error, so a misspelt one is not silently ignored.
 */
const schema = z
  .object({
    home: z.string().min(1).optional(),
    listen: hostPort.optional(),
    enrol_listen: hostPort.optional(),
    metrics_listen: hostPort.optional(),
    database_url: z.string().min(1).optional(),
    slack: z.object({ token: z.string().min(1), channel: z.string().min(1), api_url: z.string().url().optional() }).strict().optional(),
    agent_cert_ttl: duration.optional(),
    operator_cert_ttl: duration.optional(),
    command_ttl: duration.optional(),
    enrol_failures_per_minute: z.number().int().min(1).optional(),
    ingest: z.object({ connections: z.number().int().min(1).optional() }).strict().optional(),
  })
  .strict();

export type ControllerConfigFile = z.infer<typeof schema>;

/** Reads and checks the file; every problem is named by its field (`ingest.connections: …`). */
export function readControllerConfigFile(path: string): ControllerConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ControllerError('invalid_argument', `${path}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw new ControllerError('invalid_argument', `${path}: not YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, { cause: err });
  }
  const r = schema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.code === 'unrecognized_keys' ? `unknown key ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message}`);
    throw new ControllerError('invalid_argument', `${path}: ${problems.join('; ')}`);
  }
  return r.data;
}

/**
 * The file's settings as the environment variables they stand for: the environment itself goes
 * over them (flags go over both, in compileControllerConfig).
 */
export function configFileEnv(file: ControllerConfigFile): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const set = (key: string, v: string | number | undefined) => {
    if (v !== undefined) env[key] = String(v);
  };
  set('VIGIL_HOME', file.home);
  set('VIGIL_METRICS_LISTEN', file.metrics_listen);
  set('DATABASE_URL', file.database_url);
  set('SLACK_TOKEN', file.slack?.token);
  set('SLACK_CHANNEL', file.slack?.channel);
  set('SLACK_API_URL', file.slack?.api_url);
  set('VIGIL_AGENT_CERT_TTL', file.agent_cert_ttl);
  set('VIGIL_OPERATOR_CERT_TTL', file.operator_cert_ttl);
  set('VIGIL_COMMAND_TTL', file.command_ttl);
  set('VIGIL_ENROL_FAILURES_PER_MINUTE', file.enrol_failures_per_minute);
  set('VIGIL_INGEST_CONNECTIONS', file.ingest?.connections);
  return env;
}
