/*
 * inotify for the agent's watcher (agent/watch/inotify.ts). Unlike the watcher libraries, nothing
 * is dropped here: every event read from the kernel, IN_Q_OVERFLOW included, goes to JavaScript
 * as raw struct inotify_event bytes, and a watch that cannot be added returns its errno.
 *
 *   inotifyOpen(onEvents: (chunk: Buffer | null, errno: number) => void): handle
 *   inotifyAdd(handle, path: Buffer, mask: number): wd, or -errno
 *   inotifyRemove(handle, wd: number): 0, or -errno
 *   inotifyRead(handle): Buffer of the events waiting now, null when none, or -errno
 *   inotifyClose(handle): undefined
 *
 * The descriptor is non-blocking and polled by libuv on the main loop: no thread is parked on it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <uv.h>
#include "inotify.h"

typedef struct {
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  uv_poll_t poll;
  int fd;
  int closing;   /* inotifyClose (or the finalizer) ran */
  int uv_closed; /* libuv has let go of the poll handle */
  int finalized; /* the JavaScript handle was collected */
} watch_t;

#define READ_BUFFER 65536

static void deliver(watch_t *w, const char *bytes, size_t n, int err) {
  napi_env env = w->env;
  napi_value fn, recv, argv[2], result;
  if (napi_get_reference_value(env, w->callback, &fn) != napi_ok || fn == NULL) return;
  napi_get_global(env, &recv);
  if (bytes) {
    void *data;
    napi_create_buffer_copy(env, n, bytes, &data, &argv[0]);
  } else {
    napi_get_null(env, &argv[0]);
  }
  napi_create_int32(env, err, &argv[1]);
  if (napi_make_callback(env, w->context, recv, fn, 2, argv, &result) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  watch_t *w = handle->data;
  if (w->closing) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(w->env, &scope) != napi_ok) return;
  if (status < 0) {
    deliver(w, NULL, 0, -status);
  } else {
    char buf[READ_BUFFER] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
      ssize_t n = read(w->fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) deliver(w, NULL, 0, errno);
        break;
      }
      if (n == 0) break;
      deliver(w, buf, (size_t)n, 0);
      if (w->closing) break;
    }
  }
  napi_close_handle_scope(w->env, scope);
}

static void on_uv_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  close(w->fd);
  w->uv_closed = 1;
  if (w->finalized) free(w);
}

static void begin_close(watch_t *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_uv_closed);
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->context);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watch_t *w = data;
  w->finalized = 1;
  if (!w->closing) begin_close(w);
  else if (w->uv_closed) free(w);
}

static watch_t *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not an inotify handle");
    return NULL;
  }
  watch_t *w = data;
  if (w->closing) {
    napi_throw_error(env, "ERR_INOTIFY_CLOSED", "the inotify handle is closed");
    return NULL;
  }
  return w;
}

napi_value inotify_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, name;
  napi_valuetype t;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyOpen(onEvents: function)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    napi_value code;
    napi_create_int32(env, -errno, &code);
    return code;
  }
  watch_t *w = calloc(1, sizeof *w);
  if (!w) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  w->env = env;
  w->fd = fd;
  napi_create_reference(env, argv[0], 1, &w->callback);
  napi_create_string_utf8(env, "vigil:inotify", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->context);
  uv_poll_init(loop, &w->poll, fd);
  w->poll.data = w;
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  napi_create_external(env, w, finalize, NULL, &out);
  return out;
}

napi_value inotify_add(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyAdd(handle, path: Buffer, mask: number)");
    return NULL;
  }
  watch_t *w = unwrap(env, argv[0]);
  if (!w) return NULL;
  void *data;
  size_t len;
  uint32_t mask;
  bool isBuffer = false;
  napi_is_buffer(env, argv[1], &isBuffer);
  if (!isBuffer || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyAdd(handle, path: Buffer, mask: number)");
    return NULL;
  }
  if (len == 0 || len >= 4096 || memchr(data, 0, len)) {
    napi_create_int32(env, -EINVAL, &out);
    return out;
  }
  char path[4096];
  memcpy(path, data, len);
  path[len] = 0;
  int wd = inotify_add_watch(w->fd, path, mask);
  napi_create_int32(env, wd < 0 ? -errno : wd, &out);
  return out;
}

napi_value inotify_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t wd;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyRemove(handle, wd: number)");
    return NULL;
  }
  watch_t *w = unwrap(env, argv[0]);
  if (!w) return NULL;
  if (napi_get_value_int32(env, argv[1], &wd) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyRemove(handle, wd: number)");
    return NULL;
  }
  napi_create_int32(env, inotify_rm_watch(w->fd, wd) < 0 ? -errno : 0, &out);
  return out;
}

/* Reads every event waiting now, synchronously (a check's reads then come after them). */
napi_value inotify_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyRead(handle)");
    return NULL;
  }
  watch_t *w = unwrap(env, argv[0]);
  if (!w) return NULL;
  char buf[READ_BUFFER] __attribute__((aligned(__alignof__(struct inotify_event))));
  char *all = NULL;
  size_t len = 0;
  int err = 0;
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0) break;
    char *grown = realloc(all, len + (size_t)n);
    if (!grown) {
      err = ENOMEM;
      break;
    }
    all = grown;
    memcpy(all + len, buf, (size_t)n);
    len += (size_t)n;
  }
  if (len == 0) {
    free(all);
    if (err) {
      napi_create_int32(env, -err, &out);
      return out;
    }
    napi_get_null(env, &out);
    return out;
  }
  void *copy;
  napi_status st = napi_create_buffer_copy(env, len, all, &copy, &out);
  free(all);
  return st == napi_ok ? out : NULL;
}

napi_value inotify_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "inotifyClose(handle)");
    return NULL;
  }
  begin_close(data);
  return NULL;
}
