import type { SingleBar } from 'cli-progress';

/** How `rescan --wait` shows its progress on stderr: never a line per agent. */
export interface WaitProgress {
  /** `finished` targets of the total are done, failed or expired; `text` says how many of each. */
  update(finished: number, text: string): void;
  stop(): void;
}

/** Between progress lines when stderr is not a terminal. */
const LINE_EVERY_MS = 10_000;

/**
 * A bar on a terminal (cli-progress, loaded only then); elsewhere a line every 10 s while the
 * wait lasts, so a log of a long wait shows it moving. Nothing for a single agent.
 */
export async function createWaitProgress(opts: { total: number; err: NodeJS.WriteStream; now?: () => number }): Promise<WaitProgress> {
  const now = opts.now ?? Date.now;
  if (opts.total <= 1) return { update: () => undefined, stop: () => undefined };
  if (opts.err.isTTY) {
    const cliProgress = (await import('cli-progress')).default;
    const bar: SingleBar = new cliProgress.SingleBar({ format: ' {bar} {value}/{total} agents finished | {counts}', hideCursor: true, stream: opts.err }, cliProgress.Presets.shades_classic);
    bar.start(opts.total, 0, { counts: '' });
    return {
      update: (finished, text) => bar.update(finished, { counts: text }),
      stop: () => bar.stop(),
    };
  }
  let last = now();
  return {
    update(finished, text) {
      if (now() - last < LINE_EVERY_MS) return;
      last = now();
      opts.err.write(`waiting: ${finished}/${opts.total} finished (${text})\n`);
    },
    stop: () => undefined,
  };
}
