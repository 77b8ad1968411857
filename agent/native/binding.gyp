{
  "targets": [
    {
      "target_name": "vigil_listing",
      "sources": ["listing.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
