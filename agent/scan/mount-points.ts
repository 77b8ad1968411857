import { readFileSync } from 'node:fs';

/**
 * The mount points the kernel lists for this process (/proc/self/mountinfo), as latin1 strings of
 * their path bytes. A scan that stays on one file system needs to stat only these directories
 * instead of every directory it enters. Null when the list cannot be read (not Linux, no /proc):
 * the caller then stats every directory.
 */
export function readMountPoints(source = '/proc/self/mountinfo'): Set<string> | null {
  let text: Buffer;
  try {
    text = readFileSync(source);
  } catch {
    return null;
  }
  const points = new Set<string>();
  for (const line of text.toString('latin1').split('\n')) {
    const field = line.split(' ')[4];
    if (field) points.add(unescapeMountPath(field));
  }
  return points;
}

/** The kernel writes space, tab, newline and backslash in mount paths as \ooo octal escapes. */
export function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
