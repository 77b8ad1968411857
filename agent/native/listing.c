/*
 * Directory listings with every entry's lstat, for the scan's walk (agent/scan/listing.ts).
 *
 * listDirectory(dir: Buffer) lists one directory: its entries' names (latin1 strings, one
 * character per byte, so any name round-trips), sorted by bytes, and for each entry the fields of
 * fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) packed in a Uint32Array. It returns the errno (a
 * positive number) when the directory cannot be opened or read. Like readdir, it lists a symlinked
 * directory it is given (the walker decides which links to follow).
 *
 * This is what fts(3) and find do: one open per directory and a lookup of one name per entry,
 * instead of a full path lookup per entry plus a Stats object, which is most of what a stat-only
 * re-check costs in Node.js.
 */
#include <node_api.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stat-words.h"

typedef struct {
  char *buf;
  size_t len, cap;
  size_t *starts; /* offset of each name in buf; names are NUL-terminated */
  size_t n, ncap;
} names_t;

/* qsort_r: scan threads list directories at the same time, so the names' base is an argument. */
static int by_bytes(const void *a, const void *b, void *base) {
  const char *x = (const char *)base + *(const size_t *)a;
  const char *y = (const char *)base + *(const size_t *)b;
  return strcmp(x, y); /* compares as unsigned char: byte order */
}

static int push_name(names_t *t, const char *name) {
  size_t l = strlen(name) + 1;
  if (t->len + l > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4096;
    while (cap < t->len + l) cap *= 2;
    char *nb = realloc(t->buf, cap);
    if (!nb) return -1;
    t->buf = nb;
    t->cap = cap;
  }
  if (t->n == t->ncap) {
    size_t ncap = t->ncap ? t->ncap * 2 : 64;
    size_t *ns = realloc(t->starts, ncap * sizeof(size_t));
    if (!ns) return -1;
    t->starts = ns;
    t->ncap = ncap;
  }
  memcpy(t->buf + t->len, name, l);
  t->starts[t->n++] = t->len;
  t->len += l;
  return 0;
}

#define CHECK(call) \
  do { if ((call) != napi_ok) goto fail; } while (0)

napi_value list_directory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL;
  void *data;
  size_t length;
  names_t t = {0};
  DIR *d = NULL;
  char *path = NULL;
  unsigned char *types = NULL; /* d_type of each name, in listing order */
  size_t types_cap = 0;
  size_t *order = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "listDirectory(dir: Buffer)");
    return NULL;
  }
  bool is_buffer = false;
  napi_is_buffer(env, argv[0], &is_buffer);
  if (!is_buffer || napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok || memchr(data, 0, length)) {
    napi_throw_type_error(env, NULL, "listDirectory: the directory must be a Buffer without NUL bytes");
    return NULL;
  }
  path = malloc(length + 1);
  if (!path) goto oom;
  memcpy(path, data, length);
  path[length] = 0;

  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    free(path);
    napi_create_uint32(env, (uint32_t)e, &result);
    return result;
  }
  d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    free(path);
    napi_create_uint32(env, (uint32_t)e, &result);
    return result;
  }
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno) {
        int e = errno;
        closedir(d);
        free(path);
        free(t.buf);
        free(t.starts);
        free(types);
        napi_create_uint32(env, (uint32_t)e, &result);
        return result;
      }
      break;
    }
    const char *n = de->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    if (t.n == types_cap) {
      size_t cap = types_cap ? types_cap * 2 : 64;
      unsigned char *nt = realloc(types, cap);
      if (!nt) goto oom;
      types = nt;
      types_cap = cap;
    }
    types[t.n] = de->d_type;
    if (push_name(&t, n)) goto oom;
  }
  /* The names' offsets in byte order of the names. */
  order = malloc((t.n ? t.n : 1) * sizeof(size_t));
  if (!order) goto oom;
  for (size_t i = 0; i < t.n; i++) order[i] = t.starts[i];
  qsort_r(order, t.n, sizeof(size_t), by_bytes, t.buf);

  napi_value names, stats_ab, stats;
  uint32_t *slots = NULL;
  CHECK(napi_create_array_with_length(env, t.n, &names));
  CHECK(napi_create_arraybuffer(env, t.n * SLOTS * sizeof(uint32_t), (void **)&slots, &stats_ab));
  CHECK(napi_create_typedarray(env, napi_uint32_array, t.n * SLOTS, stats_ab, 0, &stats));
  int dfd = dirfd(d);
  for (size_t i = 0; i < t.n; i++) {
    const char *name = t.buf + order[i];
    /* The name's d_type: t.starts is in listing order and increasing, so its index is found by bisection. */
    size_t lo = 0, hi = t.n;
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (t.starts[mid] <= order[i]) lo = mid; else hi = mid;
    }
    unsigned char dtype = types[lo];
    napi_value s;
    CHECK(napi_create_string_latin1(env, name, NAPI_AUTO_LENGTH, &s));
    CHECK(napi_set_element(env, names, (uint32_t)i, s));
    uint32_t *o = slots + i * SLOTS;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      memset(o, 0, SLOTS * sizeof(uint32_t));
      o[0] = (uint32_t)errno;
      o[15] = dtype;
      continue;
    }
    stat_words(&st, o);
    o[15] = dtype;
  }
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "names", names));
  CHECK(napi_set_named_property(env, result, "stats", stats));
  closedir(d);
  free(path);
  free(t.buf);
  free(t.starts);
  free(types);
  free(order);
  return result;

oom:
  napi_throw_error(env, "ENOMEM", "listDirectory: out of memory");
fail:
  if (d) closedir(d);
  free(path);
  free(t.buf);
  free(t.starts);
  free(types);
  free(order);
  return NULL;
}
