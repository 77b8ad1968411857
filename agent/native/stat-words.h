/*
 * The stat fields Vigil's native code hands to JavaScript: SLOTS 32-bit words per file, in the
 * layout of agent/scan/listing.ts (STAT_SLOTS, SLOT_*): errno (0: the fields are set), mode, uid,
 * gid, link count, then size, mtime (ns), ctime (ns), inode and device as two words each (low
 * first), last the directory entry's d_type (listings only).
 */
#ifndef VIGIL_STAT_WORDS_H
#define VIGIL_STAT_WORDS_H

#include <node_api.h>
#include <stdint.h>
#include <sys/stat.h>

#define SLOTS 16 /* must match STAT_SLOTS in listing.ts */

static inline void put64(uint32_t *s, int64_t v) {
  s[0] = (uint32_t)((uint64_t)v & 0xffffffffu);
  s[1] = (uint32_t)((uint64_t)v >> 32);
}

/* Words 0 to 14 of one file; word 15 (d_type) is left as it is. */
static inline void stat_words(const struct stat *st, uint32_t *o) {
  o[0] = 0;
  o[1] = (uint32_t)st->st_mode;
  o[2] = (uint32_t)st->st_uid;
  o[3] = (uint32_t)st->st_gid;
  o[4] = (uint32_t)(st->st_nlink > 0xffffffffu ? 0xffffffffu : st->st_nlink);
  put64(o + 5, (int64_t)st->st_size);
  put64(o + 7, (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec);
  put64(o + 9, (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec);
  put64(o + 11, (int64_t)st->st_ino);
  put64(o + 13, (int64_t)st->st_dev);
}

napi_value list_directory(napi_env env, napi_callback_info info);
napi_value stat_fd(napi_env env, napi_callback_info info);

#endif
