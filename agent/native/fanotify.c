/*
 * fanotify for the agent's write capture (agent/watch/fanotify.ts). Each directory the watcher
 * watches gets an inode mark for FAN_CLOSE_WRITE on its children; every event arrives with a
 * descriptor of the written file, opened by the kernel, which keeps the file readable even after
 * it is unlinked. The descriptors go to JavaScript, which holds them until the path is checked.
 *
 *   fanotifyOpen(): handle, or -errno (EPERM without CAP_SYS_ADMIN)
 *   fanotifyMark(handle, dir: Buffer, add: boolean): 0, or -errno
 *   fanotifyRead(handle): Buffer of records (below), null when the queue is empty, or -errno
 *   fanotifyClose(handle): undefined
 *
 * A record, 4-byte aligned: int32 fd (-1: none, as with FAN_Q_OVERFLOW), int32 pid, uint32 mask
 * (the low word), uint32 path length, then the path's bytes as /proc/self/fd gives them (" (deleted)"
 * appended by the kernel when the file is unlinked; empty when unreadable), padded to 4 bytes.
 *
 * The descriptor is non-blocking and not polled: the kernel keeps the events (and the files they
 * hold) until a check reads them, synchronously, before it reads paths. Not waking the loop for
 * every close-after-write halves what the capture costs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>
#include "fanotify.h"

typedef struct {
  int fd;
  int closed;
} capture_t;

#define READ_BUFFER 65536
/* Records one fanotifyRead returns at most: each holds a descriptor, and the caller drops
 * duplicates before it reads more, so the descriptors open at once stay bounded. */
#define MAX_RECORDS 1024
#define MARK_MASK (FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD)

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  capture_t *c = data;
  if (!c->closed) close(c->fd);
  free(c);
}

static capture_t *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a fanotify handle");
    return NULL;
  }
  capture_t *c = data;
  if (c->closed) {
    napi_throw_error(env, "ERR_FANOTIFY_CLOSED", "the fanotify handle is closed");
    return NULL;
  }
  return c;
}

static napi_value int_value(napi_env env, int32_t n) {
  napi_value out;
  napi_create_int32(env, n, &out);
  return out;
}

napi_value fanotify_open(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  /* O_NONBLOCK on the files the kernel opens for us: fanotify reports only regular files and
   * directories (never a FIFO, whose open could block), but an open must never wait on the main
   * thread whatever a kernel does. */
  int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return int_value(env, -errno);
  capture_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->fd = fd;
  napi_create_external(env, c, finalize, NULL, &out);
  return out;
}

napi_value fanotify_mark_dir(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fanotifyMark(handle, dir: Buffer, add: boolean)");
    return NULL;
  }
  capture_t *c = unwrap(env, argv[0]);
  if (!c) return NULL;
  void *data;
  size_t len;
  bool isBuffer = false, add = false;
  napi_is_buffer(env, argv[1], &isBuffer);
  if (!isBuffer || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || napi_get_value_bool(env, argv[2], &add) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fanotifyMark(handle, dir: Buffer, add: boolean)");
    return NULL;
  }
  if (len == 0 || len >= PATH_MAX || memchr(data, 0, len)) return int_value(env, -EINVAL);
  char path[PATH_MAX];
  memcpy(path, data, len);
  path[len] = 0;
  unsigned int flags = (add ? FAN_MARK_ADD : FAN_MARK_REMOVE) | FAN_MARK_ONLYDIR | FAN_MARK_DONT_FOLLOW;
  int rc = fanotify_mark(c->fd, flags, MARK_MASK, AT_FDCWD, path);
  return int_value(env, rc < 0 ? -errno : 0);
}

/* Appends one record to out (grown as needed); returns 0, or -ENOMEM. */
static int append_record(char **out, size_t *len, size_t *cap, int32_t fd, int32_t pid, uint32_t mask, const char *path, uint32_t plen) {
  size_t need = 16 + ((plen + 3u) & ~3u);
  if (*len + need > *cap) {
    size_t next = *cap ? *cap * 2 : 8192;
    while (next < *len + need) next *= 2;
    char *grown = realloc(*out, next);
    if (!grown) return -ENOMEM;
    *out = grown;
    *cap = next;
  }
  char *o = *out + *len;
  memcpy(o, &fd, 4);
  memcpy(o + 4, &pid, 4);
  memcpy(o + 8, &mask, 4);
  memcpy(o + 12, &plen, 4);
  if (plen) memcpy(o + 16, path, plen);
  memset(o + 16 + plen, 0, need - 16 - plen);
  *len += need;
  return 0;
}

napi_value fanotify_read(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fanotifyRead(handle)");
    return NULL;
  }
  capture_t *c = unwrap(env, argv[0]);
  if (!c) return NULL;
  char buf[READ_BUFFER] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
  char *out = NULL;
  size_t len = 0, cap = 0;
  int err = 0;
  int records = 0;
  while (records < MAX_RECORDS) {
    /* Each event is at least the metadata: read no more than the records left can take. */
    size_t want = (size_t)(MAX_RECORDS - records) * sizeof(struct fanotify_event_metadata);
    if (want > sizeof buf) want = sizeof buf;
    ssize_t n = read(c->fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    if (n == 0) break;
    struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
      if (m->vers != FANOTIFY_METADATA_VERSION) {
        if (m->fd >= 0) close(m->fd);
        err = EPROTO;
        continue;
      }
      char path[PATH_MAX];
      ssize_t plen = 0;
      if (m->fd >= 0) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
        plen = readlink(link, path, sizeof path);
        if (plen < 0) plen = 0;
      }
      if (append_record(&out, &len, &cap, m->fd, m->pid, (uint32_t)m->mask, path, (uint32_t)plen) < 0) {
        if (m->fd >= 0) close(m->fd);
        err = ENOMEM;
      } else {
        records++;
      }
    }
  }
  if (len == 0) {
    free(out);
    if (err) return int_value(env, -err);
    napi_value nothing;
    napi_get_null(env, &nothing);
    return nothing;
  }
  napi_value result;
  void *copy;
  napi_status st = napi_create_buffer_copy(env, len, out, &copy, &result);
  if (st != napi_ok) {
    /* Nobody will see these records: close the descriptors they carry. */
    for (size_t at = 0; at + 16 <= len;) {
      int32_t fd;
      uint32_t plen;
      memcpy(&fd, out + at, 4);
      memcpy(&plen, out + at + 12, 4);
      if (fd >= 0) close(fd);
      at += 16 + ((plen + 3u) & ~3u);
    }
    free(out);
    return NULL;
  }
  free(out);
  return result;
}

napi_value fanotify_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fanotifyClose(handle)");
    return NULL;
  }
  capture_t *c = data;
  if (!c->closed) {
    c->closed = 1;
    close(c->fd);
  }
  return NULL;
}
