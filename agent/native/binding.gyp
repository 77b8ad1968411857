{
  "targets": [
    {
      "target_name": "vigil_native",
      "sources": ["addon.c", "listing.c", "stat-fd.c", "inotify.c", "fanotify.c", "memory.c", "xattr.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
