# The native addon. Each instruction set lives in its own static library so that only its own
# files are compiled with -mavx2 / -mavx512* / -march=armv8.2-a+dotprod; dispatch.cc picks one at
# run time. The libraries of one architecture are targets only when building for it (a compiler
# for the other rejects their flags). Floating point:
# -ffp-contract=off (no fused a*b+c) and no -ffast-math / -march=native, so every path rounds
# exactly like the pure-TypeScript reference. CMakeLists.txt is the other description of the same
# build (cmake-js and the kernel self-test); test/build-description.test.ts keeps the two in step.
{
  "target_defaults": {
    "cflags": ["-O3", "-ffp-contract=off", "-Wno-psabi"],
    "cflags_cc": ["-O3", "-ffp-contract=off", "-Wno-psabi", "-std=c++17"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CFLAGS": ["-ffp-contract=off"]
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1, "FloatingPointModel": 0 } }
  },
  "targets": [
    {
      "target_name": "fp4kit",
      "sources": [
        "native/binding.cc",
        "native/bitplane_gemm.cc",
        "native/bitplane_gemm_binding.cc",
        "native/dispatch.cc",
        "native/fgmp.cc",
        "native/fgmp_dequantize.cc",
        "native/fgmp_dequantize_binding.cc",
        "native/gradient_quant.cc",
        "native/gradient_quant_binding.cc",
        "native/quantize_scalar.cc",
        "native/matmul_aligned.cc",
        "native/matmul_binding.cc",
        "native/matmul_planes.cc",
        "native/matmul_scalar.cc",
        "native/sum.cc",
        "native/sum_binding.cc",
        "native/elementwise_binding.cc",
        "native/error_sums.cc",
        "native/error_sums_binding.cc",
        "native/pow.cc",
        "native/tanh.cc",
        "native/transpose.cc",
        "native/transpose_binding.cc"
      ],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["fp4kit_avx2", "fp4kit_avx512", "fp4kit_avx512_vnni", "fp4kit_avx512_vbmi", "fp4kit_avx512_vpopcntdq"] }],
        ["target_arch=='arm64'", { "sources": ["native/quantize_neon.cc", "native/bitplane_gemm_neon.cc", "native/matmul_aligned_neon.cc", "native/matmul_neon.cc", "native/matmul_planes_neon.cc"], "dependencies": ["fp4kit_neon_dotprod"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "fp4kit_avx2",
          "type": "static_library",
          "sources": ["native/quantize_avx2.cc", "native/matmul_avx2.cc", "native/matmul_planes_avx2.cc", "native/gradient_quant_avx2.cc", "native/bitplane_gemm_avx2.cc", "native/matmul_decoded_avx2.cc", "native/matmul_aligned_avx2.cc"],
          "cflags_cc": ["-mavx2"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-ffp-contract=off"] }
        },
        {
          "target_name": "fp4kit_avx512",
          "type": "static_library",
          "sources": ["native/quantize_avx512.cc", "native/gradient_quant_avx512.cc", "native/matmul_decoded_avx512.cc", "native/transpose_avx512.cc", "native/tanh_avx512.cc"],
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-ffp-contract=off"] }
        },
        {
          "target_name": "fp4kit_avx512_vnni",
          "type": "static_library",
          "sources": ["native/matmul_avx512.cc", "native/matmul_planes_avx512.cc", "native/matmul_aligned_avx512.cc"],
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-ffp-contract=off"] }
        },
        {
          "target_name": "fp4kit_avx512_vbmi",
          "type": "static_library",
          "sources": ["native/matmul_avx512_vbmi.cc", "native/matmul_planes_avx512_vbmi.cc", "native/matmul_aligned_avx512_vbmi.cc"],
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx512vbmi", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-mavx512vbmi", "-ffp-contract=off"] }
        },
        {
          "target_name": "fp4kit_avx512_vpopcntdq",
          "type": "static_library",
          "sources": ["native/bitplane_gemm_avx512.cc"],
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vpopcntdq", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vpopcntdq", "-ffp-contract=off"] }
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "fp4kit_neon_dotprod",
          "type": "static_library",
          "sources": ["native/matmul_neon_dotprod.cc", "native/matmul_planes_neon_dotprod.cc"],
          "cflags_cc": ["-march=armv8.2-a+dotprod"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-march=armv8.2-a+dotprod", "-ffp-contract=off"] }
        }
      ]
    }]
  ]
}
