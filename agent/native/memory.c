/*
 * Handing memory back to the kernel when the agent goes idle (agent/idle-memory.ts).
 *
 * releaseFileMappings(path: Buffer): number. Every shared mapping of the file at path (the LMDB
 * data file) is advised MADV_DONTNEED: its pages leave this process's resident set and stay in
 * the page cache (while the kernel keeps them), and no data is lost: a shared file mapping's
 * pages are the file's; only private mappings would be discarded. Returns the bytes of address
 * space advised; -ENOENT when no mapping of the file was found; -errno when stat, realpath, the
 * maps file or an madvise failed. Mappings are matched by inode and device (or, where the
 * device column differs, the path) in /proc/self/maps, and advised in this one call: lmdb-js
 * never unmaps a map of an open environment while remapChunks is off (it keeps old maps for
 * lingering readers; local-store.ts turns remapChunks off), so a range read here is still that
 * file's when it is advised.
 *
 * trimMallocHeap(): boolean. glibc's malloc_trim(0): free memory at the top of every arena (the
 * scan threads' included) goes back to the kernel. False where the C library has none.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "memory.h"

/* The path column of a maps line (after the inode field and its padding), without the newline. */
static const char *maps_path(char *line) {
  int field = 0;
  char *p = line;
  while (*p && field < 5) {
    while (*p && *p != ' ') p++;
    while (*p == ' ') p++;
    field++;
  }
  size_t n = strlen(p);
  if (n && p[n - 1] == '\n') p[n - 1] = 0;
  return p;
}

static int64_t release_file_mappings(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -errno;
  char real[PATH_MAX];
  if (!realpath(path, real)) return -errno;
  FILE *maps = fopen("/proc/self/maps", "re");
  if (!maps) return -errno;
  char line[PATH_MAX + 256];
  int64_t advised = 0;
  int failed = 0, matched = 0;
  while (fgets(line, sizeof line, maps)) {
    size_t len = strlen(line);
    if (len && line[len - 1] != '\n' && !feof(maps)) {
      /* Longer than any path we look for: skip the rest of that line. */
      int c;
      while ((c = fgetc(maps)) != EOF && c != '\n') {
      }
      continue;
    }
    uintptr_t start, end;
    char perms[5];
    unsigned long long offset, inode;
    unsigned int major_no, minor_no;
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %llx %x:%x %llu", &start, &end, perms, &offset, &major_no, &minor_no, &inode) != 7) continue;
    if (perms[3] != 's' || inode != (unsigned long long)st.st_ino) continue;
    /* The device column is the superblock's: on btrfs subvolumes it differs from stat's st_dev,
       so the path names the file when the device does not. */
    int same_dev = major_no == major(st.st_dev) && minor_no == minor(st.st_dev);
    if (!same_dev && strcmp(maps_path(line), real) != 0) continue;
    matched++;
    if (madvise((void *)start, end - start, MADV_DONTNEED) == 0) advised += (int64_t)(end - start);
    else failed = errno;
  }
  fclose(maps);
  if (failed) return -failed;
  return matched ? advised : -ENOENT;
}

napi_value release_file_mappings_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  void *data;
  size_t length;
  bool is_buffer = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || length == 0 || length >= 4096 || memchr(data, 0, length)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "releaseFileMappings(path: Buffer) with a path of 1 to 4095 bytes and no NUL");
    return NULL;
  }
  char path[4096];
  memcpy(path, data, length);
  path[length] = 0;
  if (napi_create_int64(env, release_file_mappings(path), &result) != napi_ok) return NULL;
  return result;
}

napi_value trim_malloc_heap_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef __GLIBC__
  malloc_trim(0);
  if (napi_get_boolean(env, true, &result) != napi_ok) return NULL;
#else
  if (napi_get_boolean(env, false, &result) != napi_ok) return NULL;
#endif
  return result;
}
