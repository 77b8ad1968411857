/*
 * statFd(fd: number, words: Uint32Array, at: number): number, for the hashing loop
 * (agent/hashing/stat-fd.ts): fstat of an open file written into words[at .. at + SLOTS) (layout in
 * stat-words.h). Returns 0, or the errno of a failed fstat. It allocates nothing: Node's fstatSync
 * builds a Stats object (with four Dates) per call, twice per file hashed.
 */
#include <errno.h>
#include <sys/stat.h>

#include "stat-words.h"

napi_value stat_fd(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd;
  uint32_t at;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[2], &at) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint32_array ||
      (size_t)at + SLOTS > length) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "statFd(fd: number, words: Uint32Array, at: number) with room for the stat words at at");
    return NULL;
  }
  struct stat st;
  uint32_t *o = (uint32_t *)data + at;
  int err = fstat(fd, &st) == 0 ? 0 : errno;
  if (!err) stat_words(&st, o);
  if (napi_create_uint32(env, (uint32_t)err, &result) != napi_ok) return NULL;
  return result;
}
