/*
 * Extended attributes of one path, never following a symlink (llistxattr, lgetxattr): every
 * namespace the agent may read (user, trusted, security: file capabilities and SELinux labels;
 * system: POSIX ACLs). Used by agent/xattrs.ts.
 *
 *   readXattrs(path: Buffer): Array of [name: Buffer, value: Buffer], or -errno
 *
 * A file system without extended attributes (ENOTSUP) gives an empty list. An attribute removed
 * between the list and its read is left out; one that grew is read again.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include "xattr.h"

static napi_value int_value(napi_env env, int32_t n) {
  napi_value out;
  napi_create_int32(env, n, &out);
  return out;
}

/* The value of one attribute in a malloc'd buffer (*len its size); NULL with errno set. */
static char *read_value(const char *path, const char *name, ssize_t *len) {
  for (int attempt = 0; attempt < 4; attempt++) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) return NULL;
    /* One byte more than the value: a size-0 read would ask for the size, not the value, and a
     * value that grew in between shows as filling the buffer. */
    char *value = malloc((size_t)size + 1);
    if (!value) {
      errno = ENOMEM;
      return NULL;
    }
    ssize_t got = lgetxattr(path, name, value, (size_t)size + 1);
    if (got >= 0 && got <= size) {
      *len = got;
      return value;
    }
    free(value);
    if (got >= 0) continue; /* grew since its size was asked: ask again */
    if (errno != ERANGE) return NULL;
  }
  errno = ERANGE;
  return NULL;
}

napi_value read_xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool isBuffer = false;
  void *data;
  size_t plen;
  if (argc < 1 || napi_is_buffer(env, argv[0], &isBuffer) != napi_ok || !isBuffer || napi_get_buffer_info(env, argv[0], &data, &plen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "readXattrs(path: Buffer)");
    return NULL;
  }
  if (plen == 0 || plen >= PATH_MAX || memchr(data, 0, plen)) return int_value(env, -EINVAL);
  char path[PATH_MAX];
  memcpy(path, data, plen);
  path[plen] = 0;

  char *names = NULL;
  ssize_t nlen = 0;
  for (int attempt = 0;; attempt++) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) {
      int err = errno;
      if (err == ENOTSUP) size = 0;
      else return int_value(env, -err);
    }
    if (size == 0) break;
    names = malloc((size_t)size);
    if (!names) return int_value(env, -ENOMEM);
    nlen = llistxattr(path, names, (size_t)size);
    if (nlen >= 0) break;
    int err = errno;
    free(names);
    names = NULL;
    if (err != ERANGE || attempt >= 3) return int_value(env, -err);
  }

  napi_value list;
  napi_create_array(env, &list);
  uint32_t count = 0;
  for (ssize_t at = 0; at < nlen;) {
    const char *name = names + at;
    size_t len = strnlen(name, (size_t)(nlen - at));
    at += (ssize_t)len + 1;
    if (len == 0) continue;
    ssize_t vlen = 0;
    char *value = read_value(path, name, &vlen);
    if (!value) {
      if (errno == ENODATA) continue; /* removed since it was listed */
      int err = errno;
      free(names);
      return int_value(env, -err);
    }
    napi_value pair, nameBuf, valueBuf;
    void *copy;
    napi_create_buffer_copy(env, len, name, &copy, &nameBuf);
    napi_create_buffer_copy(env, (size_t)vlen, value, &copy, &valueBuf);
    free(value);
    napi_create_array_with_length(env, 2, &pair);
    napi_set_element(env, pair, 0, nameBuf);
    napi_set_element(env, pair, 1, valueBuf);
    napi_set_element(env, list, count++, pair);
  }
  free(names);
  return list;
}

/*
 *   setXattr(path: Buffer, name: string, value: Buffer): 0, or -errno (lsetxattr; for tests and tools)
 */
napi_value set_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool pb = false, vb = false;
  void *pdata, *vdata;
  size_t plen, vlen, nlen;
  char name[XATTR_NAME_MAX + 1];
  if (argc < 3 || napi_is_buffer(env, argv[0], &pb) != napi_ok || !pb || napi_is_buffer(env, argv[2], &vb) != napi_ok || !vb ||
      napi_get_buffer_info(env, argv[0], &pdata, &plen) != napi_ok || napi_get_buffer_info(env, argv[2], &vdata, &vlen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], name, sizeof name, &nlen) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "setXattr(path: Buffer, name: string, value: Buffer)");
    return NULL;
  }
  if (plen == 0 || plen >= PATH_MAX || memchr(pdata, 0, plen) || nlen == 0) return int_value(env, -EINVAL);
  char path[PATH_MAX];
  memcpy(path, pdata, plen);
  path[plen] = 0;
  return int_value(env, lsetxattr(path, name, vdata, vlen, 0) < 0 ? -errno : 0);
}
