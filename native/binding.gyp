# The blobfs erasure codec, built from source by `npm ci` (package.json "install").
# The SIMD kernels carry per-function target attributes and are chosen at run time
# from the CPU's features, so the build needs no -mavx2 and runs on any x86-64.
# -fvisibility=hidden: node itself exports symbols (gf_mul, from its bundled
# crypto) that would otherwise win over ours at dynamic link time.
{
  "targets": [
    {
      "target_name": "blobfs_codec",
      "sources": ["src/gf.c", "src/kernels.c", "src/binding.c"],
      "cflags": ["-std=c11", "-O3", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags!": ["-O2", "-O0"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
