import { attributesJson } from './xattr-encoding.js';
import { displayPath, type FileState } from './model.js';

/**
 * The one JSON shape of a file's state, shared by `vigil-agent scan --json`, `vigilctl files
 * -o json` and `vigilctl events -o json` (docs/cli.md): times as ISO-8601 with nanosecond digits,
 * 64-bit numbers as decimal strings, hashes as hex, paths as display text plus their exact bytes.
 */

/** Nanoseconds since the epoch as an ISO-8601 string with nanosecond digits. */
export function nsToIso(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** A path as display text (escaped where it is not printable UTF-8) and as its exact bytes. */
export function pathJson(path: Buffer) {
  return { path: displayPath(path), pathBytes: path.toString('base64') };
}

/** A state's fields; every one null when there is no state (a deletion). */
export function fileStateJson(s: FileState | null) {
  return {
    type: s?.type ?? null,
    size: s ? s.size : null,
    mode: s ? s.mode : null,
    uid: s ? s.uid : null,
    gid: s ? s.gid : null,
    mtime: s ? nsToIso(s.mtimeNs) : null,
    ctime: s ? nsToIso(s.ctimeNs) : null,
    inode: s ? s.inode.toString() : null,
    nlink: s ? s.nlink : null,
    sha256: s?.sha256 ? s.sha256.toString('hex') : null,
    digest: s?.digest ? { algorithm: s.digest.algorithm, hex: s.digest.value.toString('hex') } : null,
    xattrsSha256: s?.xattrs ? s.xattrs.toString('hex') : null,
    attributes: s?.attrValues ? attributesJson(s.attrValues) : null,
    symlinkTarget: s?.symlinkTarget ? displayPath(s.symlinkTarget) : null,
    error: s?.error ?? null,
  };
}
