{
  "targets": [
    {
      "target_name": "dinots_native",
      "sources": [
        "src/addon.cc",
        "src/matmul.cc",
        "src/elementwise.cc",
        "src/reduce.cc",
        "src/layout.cc",
        "src/nn_ops.cc",
        "src/adamw.cc",
        "src/bf16_cache.cc",
        "src/packed_weights.cc",
        "src/attention.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-O2", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-fexceptions",
                    "-ffast-math", "-fno-finite-math-only"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lmvec", "-fopenmp"]
    }
  ]
}
