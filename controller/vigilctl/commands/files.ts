import { resolveAgentId } from '../agent-ref.js';
import type { CliContext } from '../cli-context.js';
import { fileJson, modeString } from '../output.js';

const PAGE = 5000;

export function registerFiles(ctx: CliContext): void {
  ctx.program
    .command('files')
    .description("the controller's current state of one agent's files (what reconciliation keeps equal to the agent's baseline), in path order")
    .requiredOption('--agent <agent>', 'the agent: its id, or a unique prefix of one')
    .action((o: { agent: string }) =>
      ctx.withClient(async (c) => {
        const agentId = await resolveAgentId(c, o.agent);
        const json = ctx.json();
        if (json) process.stdout.write('[');
        else ctx.print(['MODE', 'SIZE', 'SHA256', 'PATH'].join('\t'));
        let after: Uint8Array = new Uint8Array(0);
        let first = true;
        // A page at a time: an agent may hold millions of paths.
        for (;;) {
          const res = await c.listFiles({ agentId, after, limit: PAGE });
          for (const f of res.files) {
            const j = fileJson(f);
            if (json) process.stdout.write(`${first ? '\n' : ',\n'}${JSON.stringify(j)}`);
            else ctx.print([modeString(j.mode), String(j.size), j.error ? `!${j.error}` : (j.sha256?.slice(0, 12) ?? '-'), j.path].join('\t'));
            first = false;
          }
          if (res.files.length < PAGE) break;
          after = res.files[res.files.length - 1]!.path;
        }
        if (json) process.stdout.write('\n]\n');
      }),
    );
}
