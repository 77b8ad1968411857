/* inotify.c: the watcher's kernel interface. */
#ifndef VIGIL_INOTIFY_H
#define VIGIL_INOTIFY_H

#include <node_api.h>

napi_value inotify_open(napi_env env, napi_callback_info info);
napi_value inotify_add(napi_env env, napi_callback_info info);
napi_value inotify_remove(napi_env env, napi_callback_info info);
napi_value inotify_read(napi_env env, napi_callback_info info);
napi_value inotify_close(napi_env env, napi_callback_info info);

#endif
