{
  "targets": [
    {
      "target_name": "llmq_tensor",
      "sources": ["native/addon.cc", "native/kernels.c", "native/pool.c"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O0"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-O2", "-O0"],
      "cflags": ["-O3", "-fno-strict-aliasing", "-fno-tree-loop-distribute-patterns", "-pthread", "-Wall", "-Wno-unused-function"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "ldflags": ["-pthread"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES", "OTHER_CFLAGS": ["-O3"] }
    }
  ]
}
