/** A path's extended attributes: name and value, as exact bytes. */
export type XattrList = [name: Buffer, value: Buffer][];

/**
 * The encoding of an attribute list both sides share: the attributes sorted by name, each as
 * name-length (u32 BE), name, value-length (u32 BE), value. The `xattrs` digest is SHA-256 over
 * it; FileState.attrValues (the `acl` and `selinux` values) is it.
 */
export function encodeXattrs(list: XattrList): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of [...list].sort((a, b) => Buffer.compare(a[0], b[0]))) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(name.length);
    const vlen = Buffer.alloc(4);
    vlen.writeUInt32BE(value.length);
    parts.push(len, name, vlen, value);
  }
  return Buffer.concat(parts);
}

/** encodeXattrs undone; a malformed buffer gives what could be read. */
export function decodeXattrs(b: Buffer): XattrList {
  const out: XattrList = [];
  let o = 0;
  while (o + 4 <= b.length) {
    const n = b.readUInt32BE(o);
    const name = b.subarray(o + 4, o + 4 + n);
    o += 4 + n;
    if (o + 4 > b.length) break;
    const v = b.readUInt32BE(o);
    const value = b.subarray(o + 4, o + 4 + v);
    o += 4 + v;
    out.push([name, value]);
  }
  return out;
}

/**
 * The named attributes' values (FileState.attrValues) by name: printable text as it is (an
 * SELinux label), anything else as hex (an ACL).
 */
export function attributesJson(encoded: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of decodeXattrs(encoded)) {
    const text = value.toString('utf8').replace(/\0$/, '');
    out[name.toString('latin1')] = /^[\x20-\x7e]*$/.test(text) && !text.includes('\uFFFD') ? text : `0x${value.toString('hex')}`;
  }
  return out;
}

/** Names whose values differ between two attribute maps (set, changed or removed). */
export function changedAttributes(before: Record<string, string> | null, after: Record<string, string> | null): string[] {
  if (!before || !after) return [];
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => before[k] !== after[k]).sort();
}
