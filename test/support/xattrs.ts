import { loadNativeAddon } from '../../agent/native/addon.js';

/** Sets an extended attribute on a path (not following a symlink) through the agent's native addon: no `setfattr` needed. */
export function setXattr(path: string | Buffer, name: string, value: string | Buffer): void {
  const addon = loadNativeAddon();
  if (!addon) throw new Error('the native addon is not built (npm run build)');
  const rc = addon.setXattr(typeof path === 'string' ? Buffer.from(path) : path, name, typeof value === 'string' ? Buffer.from(value) : value);
  if (rc < 0) throw new Error(`setxattr ${name} on ${path.toString()} failed: errno ${-rc}`);
}
