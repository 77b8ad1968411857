#ifndef VIGIL_MEMORY_H
#define VIGIL_MEMORY_H

#include <node_api.h>

napi_value release_file_mappings_js(napi_env env, napi_callback_info info);
napi_value trim_malloc_heap_js(napi_env env, napi_callback_info info);

#endif
