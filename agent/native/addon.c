/* The agent's native addon (vigil_native.node): its functions, each in a file of its own. */
#include "fanotify.h"
#include "inotify.h"
#include "memory.h"
#include "stat-words.h"
#include "xattr.h"

#define EXPORT(name, fn)                                                                  \
  if (napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f) != napi_ok) return NULL; \
  if (napi_set_named_property(env, exports, name, f) != napi_ok) return NULL;

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value f;
  EXPORT("listDirectory", list_directory)
  EXPORT("statFd", stat_fd)
  EXPORT("inotifyOpen", inotify_open)
  EXPORT("inotifyAdd", inotify_add)
  EXPORT("inotifyRemove", inotify_remove)
  EXPORT("inotifyRead", inotify_read)
  EXPORT("inotifyClose", inotify_close)
  EXPORT("fanotifyOpen", fanotify_open)
  EXPORT("fanotifyMark", fanotify_mark_dir)
  EXPORT("fanotifyRead", fanotify_read)
  EXPORT("fanotifyClose", fanotify_close)
  EXPORT("readXattrs", read_xattrs)
  EXPORT("setXattr", set_xattr)
  EXPORT("releaseFileMappings", release_file_mappings_js)
  EXPORT("trimMallocHeap", trim_malloc_heap_js)
  return exports;
}
