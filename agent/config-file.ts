import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { AGENT_DEFAULTS, compileAgentConfig, type AgentConfig, type AgentConfigInput } from './config.js';
import { AgentError } from './errors.js';

/** What `vigil-agent run --config FILE` reads: where the agent keeps its state, its metrics port, and its options. */
export interface AgentConfigFile {
  readonly stateDir?: string;
  readonly metricsListen?: string;
  readonly options: AgentConfigInput;
}

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The file's keys (snake_case) as the options' (camelCase), refusing any the agent does not have. */
function options(doc: Record<string, unknown>, known: Record<string, unknown>, path: string, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    const k = camel(key);
    if (!(k in known)) {
      problems.push(`${path}${key}: unknown key`);
      continue;
    }
    const shape = known[k];
    if (isObject(shape)) {
      if (!isObject(value)) problems.push(`${path}${key}: expected a mapping`);
      else out[k] = options(value, shape, `${path}${key}.`, problems);
    } else out[k] = value;
  }
  return out;
}

/**
 * Reads the agent's YAML config file (docs/deploy.md, "Config files"): `state_dir`,
 * `metrics_listen` and the option groups `stream`, `watch` and `capture` with the names of
 * agent/config.ts in snake_case. Flags and environment variables go over it. Every problem is
 * named by its field; an unknown key is one.
 */
export function readAgentConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): AgentConfigFile & { readonly compiled: AgentConfig } {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message.split('\n')[0] : String(err));
    throw new AgentError('invalid_argument', `${path}: cannot read the config file (${why})`, { cause: err });
  }
  if (!isObject(doc)) throw new AgentError('invalid_argument', `${path}: (top level): expected a mapping`);
  const problems: string[] = [];
  const { state_dir: stateDir, metrics_listen: metricsListen, ...rest } = doc;
  if (stateDir !== undefined && (typeof stateDir !== 'string' || !stateDir)) problems.push('state_dir: expected a path');
  if (metricsListen !== undefined && typeof metricsListen !== 'string') problems.push('metrics_listen: expected HOST:PORT');
  const input = options(rest, AGENT_DEFAULTS as unknown as Record<string, unknown>, '', problems);
  if (problems.length) throw new AgentError('invalid_argument', `${path}: ${problems.join('; ')}`);
  let compiled: AgentConfig;
  try {
    compiled = compileAgentConfig(input as AgentConfigInput, env);
  } catch (err) {
    // "agent option stream.batchSize: …" names the option; the file calls it stream.batch_size.
    const m = err instanceof AgentError ? /^agent option ([\w.()]+): ([\s\S]*)$/.exec(err.message) : null;
    if (!m) throw err;
    throw new AgentError('invalid_argument', `${path}: ${m[1]!.split('.').map(snake).join('.')}: ${m[2]}`, { cause: err });
  }
  return { ...(stateDir ? { stateDir: stateDir as string } : {}), ...(metricsListen ? { metricsListen: metricsListen as string } : {}), options: input as AgentConfigInput, compiled };
}
