/* The agent's native addon (vigil_native.node): its functions, each in a file of its own. */
#include "stat-words.h"

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "listDirectory", NAPI_AUTO_LENGTH, list_directory, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "listDirectory", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "statFd", NAPI_AUTO_LENGTH, stat_fd, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "statFd", fn) != napi_ok) return NULL;
  return exports;
}
