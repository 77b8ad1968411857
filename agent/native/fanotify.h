/* fanotify.c: the write capture's kernel interface. */
#ifndef VIGIL_FANOTIFY_H
#define VIGIL_FANOTIFY_H

#include <node_api.h>

napi_value fanotify_open(napi_env env, napi_callback_info info);
napi_value fanotify_mark_dir(napi_env env, napi_callback_info info);
napi_value fanotify_read(napi_env env, napi_callback_info info);
napi_value fanotify_close(napi_env env, napi_callback_info info);

#endif
