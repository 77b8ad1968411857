import { access, readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ControllerError } from '../errors.js';
import { resolveHomeDir, vigilHome, type ControllerInfo, type VigilHome } from '../home.js';
import { createAdminClient, type AdminClient } from './admin-client.js';

/** How a command prints: tables (`-o wide` adds columns), or JSON (`--json`, `-o json`). */
export type OutputFormat = 'table' | 'wide' | 'json';

/** What every vigilctl command works with: the program's global options, output, the admin client. */
export interface CliContext {
  readonly program: Command;
  home(): VigilHome;
  format(): OutputFormat;
  json(): boolean;
  print(text: string): void;
  printJson(value: unknown): void;
  /** A note on stderr (what was left out, what to do next), so stdout stays the data. */
  note(text: string): void;
  /** Runs fn with an admin client for the controller (--controller, else the address init recorded). */
  withClient<T>(fn: (client: AdminClient) => Promise<T>): Promise<T>;
  /** The controller address a command uses (for messages). */
  controllerAddress(): Promise<string>;
}

interface GlobalOpts {
  json?: boolean;
  output?: string;
  controller?: string;
}

export function createCliContext(program: Command): CliContext {
  const globals = () => program.opts<GlobalOpts>();
  const home = () => vigilHome(resolveHomeDir());
  const print = (text: string) => void process.stdout.write(`${text}\n`);
  const format = (): OutputFormat => {
    const o = globals().output;
    if (globals().json || o === 'json') return 'json';
    if (o === 'wide') return 'wide';
    if (o === undefined || o === 'table') return 'table';
    throw new ControllerError('invalid_argument', `-o/--output: json, wide or table, not "${o}"`);
  };
  const requireHome = async (h: VigilHome) => {
    try {
      await access(h.operatorCert);
    } catch {
      throw new ControllerError('not_found', `no controller home at ${h.dir}: run \`vigilctl init\` there, or set VIGIL_HOME to an operator home (\`vigilctl admins add\` makes one)`);
    }
  };
  const controllerAddress = async () => {
    const given = globals().controller;
    if (given) return given;
    const h = home();
    await requireHome(h);
    return (JSON.parse(await readFile(h.controllerInfo, 'utf8')) as ControllerInfo).address;
  };
  return {
    program,
    home,
    format,
    json: () => format() === 'json',
    print,
    printJson: (v) => print(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2)),
    note: (text) => void process.stderr.write(`${text}\n`),
    controllerAddress,
    async withClient(fn) {
      const h = home();
      await requireHome(h);
      const { client, close } = await createAdminClient(h, await controllerAddress());
      try {
        return await fn(client);
      } finally {
        close();
      }
    },
  };
}
