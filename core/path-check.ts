/** Longest path a delta may carry (Linux's PATH_MAX, with its NUL). */
export const MAX_PATH_BYTES = 4096;

/**
 * Why a path from an agent cannot be stored, or null when it can: paths are absolute, normalised
 * (no empty, `.` or `..` segment, no trailing slash but the root's), without NUL, 1 to 4,096 bytes.
 * The agent builds every path from its roots and the kernel's names, so only a broken or hostile
 * agent sends anything else.
 */
export function pathProblem(path: Uint8Array): string | null {
  if (path.length === 0) return 'is empty';
  if (path.length > MAX_PATH_BYTES) return `is ${path.length} bytes, more than ${MAX_PATH_BYTES}`;
  if (path[0] !== 0x2f) return 'is not absolute';
  if (path.includes(0)) return 'contains a NUL byte';
  if (path.length === 1) return null;
  if (path[path.length - 1] === 0x2f) return 'ends with a slash';
  let start = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i < path.length && path[i] !== 0x2f) continue;
    const len = i - start;
    if (len === 0) return 'has an empty segment (//)';
    if (len === 1 && path[start] === 0x2e) return 'has a "." segment';
    if (len === 2 && path[start] === 0x2e && path[start + 1] === 0x2e) return 'has a ".." segment';
    start = i + 1;
  }
  return null;
}
