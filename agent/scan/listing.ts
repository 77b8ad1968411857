import { nativeAddon } from '../native/addon.js';
import { STAT_SLOTS } from '../native/stat-slots.js';

/** One directory's entries sorted by name bytes (names as latin1 text), with their stat fields. */
export interface StatListing {
  readonly names: string[];
  readonly stats: Uint32Array;
}

/** Lists a directory with every entry's lstat; returns the errno when it cannot be listed. */
export type ListDirectory = (dir: Buffer) => StatListing | number;

/**
 * The native listing (one open per directory, one fstatat of one name per entry, as find does),
 * or null where the addon is not built or VIGIL_NATIVE=0 (native.ts): the walk then lists with
 * readdir and the re-check lstat's each full path (same results, slower).
 */
export function nativeListing(env: NodeJS.ProcessEnv = process.env): ListDirectory | null {
  return nativeAddon(env)?.listDirectory ?? null;
}
