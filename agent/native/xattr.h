/* xattr.c: extended attributes of one path. */
#ifndef VIGIL_XATTR_H
#define VIGIL_XATTR_H

#include <node_api.h>

napi_value read_xattrs(napi_env env, napi_callback_info info);
napi_value set_xattr(napi_env env, napi_callback_info info);

#endif
