// Self-test of the quantization kernel tables without Node: every SIMD table this build has
// (AVX2, AVX-512 on x86-64; NEON on AArch64) must give the bytes of the scalar reference on
// random and adversarial inputs, for every element format, rounding mode, scale rule and dtype.
// CI builds it natively and cross-compiled for AArch64, run under qemu (scripts/native-selftest.sh).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "../../native/block_scale.h"
#include "../../native/element_codec.h"
#include "../../native/bitplane_gemm.h"
#include "../../native/matmul.h"
#include "../../native/matmul_aligned.h"
#include "../../native/matmul_planes.h"
#include "../../native/quantize.h"
#include "../../native/threads.h"

using namespace fp4kit;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    if (failures < 20) std::printf("FAIL %s\n", what.c_str());
    failures++;
  }
}

std::vector<uint32_t> makeInput(size_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> bits(n);
  const float grid[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 448.0f, 464.0f, 0.5f, 7.75f, 30.0f};
  for (size_t i = 0; i < n; i++) {
    const int scale = static_cast<int>((i / 16) % 60) - 30;
    float v;
    switch (rng() % 5) {
      case 0: v = grid[rng() % 13] * std::ldexp(1.0f, scale); break;                  // ties
      case 1: v = bitsToFloat(floatToBits(grid[rng() % 13]) + (rng() % 3) - 1); break;  // ±1 ulp
      case 2: v = bitsToFloat(rng() % 0x00800000u); break;                              // subnormals
      default: v = std::ldexp(static_cast<float>(rng() % 100000) / 100000.0f, scale);
    }
    if (rng() % 2) v = -v;
    bits[i] = floatToBits(v);
    if (specials && rng() % 200 == 0) bits[i] = (rng() % 2) ? 0x7fc00000u : 0xff800000u;
  }
  return bits;
}

void compareTables(const QuantizeKernels& simd) {
  const int64_t rows = 23, cols = 1000;  // whole and ragged blocks, groups of 16 NVFP4 blocks
  for (uint32_t seed = 1; seed <= 4; seed++) {
    const bool specials = seed % 2 == 1;
    const std::vector<uint32_t> f32 = makeInput(rows * cols, seed, specials);
    std::vector<uint16_t> half(f32.size());
    for (size_t i = 0; i < f32.size(); i++) half[i] = static_cast<uint16_t>(f32[i] >> 16);  // bf16 and f16 bit patterns
    for (int32_t dtype : {kF32, kBf16, kF16}) {
      const void* src = dtype == kF32 ? static_cast<const void*>(f32.data()) : static_cast<const void*>(half.data());
      for (int32_t format : {kE2m1, kE2m3, kE3m2, kE4m3, kE5m2, kInt8}) {
        for (int32_t rounding : {kNearest, kStochastic}) {
          for (int32_t rule : {kScaleFloor, kScaleCeil}) {
            BlockArgs a{};
            a.src = src; a.dtype = dtype; a.rows = rows; a.cols = cols; a.format = format;
            a.scaleRule = rule; a.rounding = rounding; a.seed = seed * 7; a.firstIndex = 4294967296ull - 5000;
            const int64_t bytes = rows * packedRowBytes(cols, kMxBlock, kElementFormats[format].bits);
            std::vector<uint8_t> d1(bytes), s1(rows * 32), d2(bytes), s2(rows * 32);
            a.data = d1.data(); a.scales = s1.data();
            kScalarKernels.quantizeMx(a, 0, rows);
            a.data = d2.data(); a.scales = s2.data();
            simd.quantizeMx(a, 0, rows);
            const std::string what = std::string(simd.simd) + " mx format " + std::to_string(format) + " dtype " + std::to_string(dtype) +
                                     " rounding " + std::to_string(rounding) + " rule " + std::to_string(rule) + " seed " + std::to_string(seed);
            check(d1 == d2 && s1 == s2, what);
            std::vector<float> o1(rows * cols), o2(rows * cols);
            a.out = o1.data(); a.data = d1.data(); a.scales = s1.data();
            kScalarKernels.dequantizeMx(a, 0, rows);
            a.out = o2.data();
            simd.dequantizeMx(a, 0, rows);
            check(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0, "dequantize " + what);
          }
        }
      }
      // Element casts (encodeElements): every element format, both roundings, random indices that
      // cross 2^32 (the stochastic stream's key changes there) and counts off the vector width.
      for (int32_t format : {kE2m1, kE2m3, kE3m2, kE4m3, kE5m2, kInt8, kE8m0}) {
        for (int32_t rounding : {kNearest, kStochastic}) {
          ElementArgs e{};
          e.src = src; e.dtype = dtype; e.format = format; e.rounding = rounding; e.seed = seed * 11;
          e.firstIndex = 4294967296ull - 3001;
          const int64_t count = rows * cols - 7;
          std::vector<uint8_t> c1(count), c2(count);
          e.count = count;
          e.out = c1.data();
          const int64_t n1 = kScalarKernels.encodeElements(e, 0, count);
          e.out = c2.data();
          const int64_t n2 = simd.encodeElements(e, 0, 13) + simd.encodeElements(e, 13, count);  // two ranges, as two threads
          check(c1 == c2 && n1 == n2, std::string(simd.simd) + " encodeElements format " + std::to_string(format) + " dtype " +
                                          std::to_string(dtype) + " rounding " + std::to_string(rounding) + " seed " + std::to_string(seed));
        }
      }
      // Element decodes (decodeElements): every format, every byte (bits above a format's width
      // included: they are ignored), over ranges that start and end off the vector width.
      if (dtype == kF32 && seed == 1) {
        std::vector<uint8_t> codes(1000 + 37);
        for (size_t i = 0; i < codes.size(); i++) codes[i] = static_cast<uint8_t>(i * 7 + i / 256);
        for (int32_t format : {kE2m1, kE2m3, kE3m2, kE4m3, kE5m2, kInt8, kE8m0}) {
          std::vector<float> d1(codes.size(), -1.0f), d2(codes.size(), -1.0f);
          kScalarKernels.decodeElements(codes.data(), format, d1.data(), 0, static_cast<int64_t>(codes.size()));
          simd.decodeElements(codes.data(), format, d2.data(), 0, 3);
          simd.decodeElements(codes.data(), format, d2.data(), 3, static_cast<int64_t>(codes.size()));
          check(std::memcmp(d1.data(), d2.data(), d1.size() * 4) == 0, std::string(simd.simd) + " decodeElements format " + std::to_string(format));
        }
      }
      // tanhf (tanh32): every 4099th float32 bit pattern (NaNs, infinities, subnormals included)
      // and this seed's input, over ranges that start and end off the vector width.
      if (dtype == kF32) {
        std::vector<uint32_t> x(f32);
        for (uint64_t w = seed; w < (uint64_t(1) << 32); w += 4099) x.push_back(static_cast<uint32_t>(w));
        const int64_t n = static_cast<int64_t>(x.size());
        std::vector<float> t1(x.size(), -1.0f), t2(x.size(), -1.0f);
        const float* in = reinterpret_cast<const float*>(x.data());
        kScalarKernels.tanh32(in, t1.data(), 0, n);
        simd.tanh32(in, t2.data(), 0, 5);
        simd.tanh32(in, t2.data(), 5, n);
        check(std::memcmp(t1.data(), t2.data(), t1.size() * 4) == 0, std::string(simd.simd) + " tanh32 seed " + std::to_string(seed));
      }
      // Error sums (errorSums): the source against a perturbed copy of itself, over column counts
      // off the eight lanes and the vector width, rows in two ranges (as two threads), NaN/Inf
      // inputs on the seeds with specials; the row sums and the max must have the same bits, and
      // the histogram's counts (of both ranges) the same values. Two copies: one far off (errors
      // over some 60 binades: the vector counting's window moves and misses often), one mostly
      // exact or an ulp off (its exact counter, emptied every 255 steps).
      for (int64_t width : {int64_t(1), int64_t(7), int64_t(8), int64_t(13), int64_t(40), int64_t(1000)}) {
        for (int copy = 0; copy < 2; copy++) {
          const int64_t n = rows * cols / width;
          std::vector<float> decoded(static_cast<size_t>(n * width));
          for (size_t i = 0; i < decoded.size(); i++) {
            const float x = bitsToFloat(loadBits(src, dtype, static_cast<int64_t>(i)));
            decoded[i] = copy == 0 ? x * 0.75f + static_cast<float>(i % 5) : i % 3 == 0 ? bitsToFloat(floatToBits(x) + 1) : x;
          }
          std::vector<double> r1(static_cast<size_t>(2 * n), -1.0), r2(static_cast<size_t>(2 * n), -2.0);
          std::vector<uint64_t> h1(kErrorBins, 0), h2(kErrorBins, 0);
          double m1 = -1.0 / 0.0, m2 = -1.0 / 0.0, m3 = -1.0 / 0.0;
          kScalarKernels.errorSums(src, dtype, decoded.data(), width, 0, n, r1.data(), &m1, h1.data());
          simd.errorSums(src, dtype, decoded.data(), width, 0, n / 3, r2.data(), &m2, h2.data());
          simd.errorSums(src, dtype, decoded.data(), width, n / 3, n, r2.data(), &m3, h2.data());
          if (m3 > m2) m2 = m3;
          // NaN sums compare equal whatever their payload (it is unspecified).
          bool same = std::memcmp(&m1, &m2, 8) == 0;
          for (size_t i = 0; i < r1.size(); i++) same = same && (std::memcmp(&r1[i], &r2[i], 8) == 0 || (r1[i] != r1[i] && r2[i] != r2[i]));
          uint64_t total = 0;
          for (uint64_t c : h1) total += c;
          const std::string what = std::string(simd.simd) + " errorSums width " + std::to_string(width) + " copy " + std::to_string(copy) +
                                   " dtype " + std::to_string(dtype) + " seed " + std::to_string(seed);
          check(same, what);
          check(h1 == h2 && total == static_cast<uint64_t>(n * width), what + " histogram");
          // Without a histogram: the same sums (the loop that does not count).
          std::vector<double> r3(static_cast<size_t>(2 * n), -3.0);
          double m4 = -1.0 / 0.0;
          simd.errorSums(src, dtype, decoded.data(), width, 0, n, r3.data(), &m4, nullptr);
          bool plain = std::memcmp(&m1, &m4, 8) == 0;
          for (size_t i = 0; i < r1.size(); i++) plain = plain && (std::memcmp(&r1[i], &r3[i], 8) == 0 || (r1[i] != r1[i] && r3[i] != r3[i]));
          check(plain, what + " without histogram");
        }
      }
      // Every error in one binade (|d| = 2^−24, 23 000 times): each of the SIMD histogram's
      // counters fills to its limit.
      if (dtype == kF32 && seed == 1) {
        const std::vector<float> ones(static_cast<size_t>(rows * cols), 1.0f), below(ones.size(), 1.0f - 1.0f / 16777216.0f);
        std::vector<double> r(static_cast<size_t>(2 * rows));
        std::vector<uint64_t> h1(kErrorBins, 0), h2(kErrorBins, 0);
        double m1 = -1.0 / 0.0, m2 = -1.0 / 0.0;
        kScalarKernels.errorSums(ones.data(), kF32, below.data(), cols, 0, rows, r.data(), &m1, h1.data());
        simd.errorSums(ones.data(), kF32, below.data(), cols, 0, rows, r.data(), &m2, h2.data());
        const int bin = -24 - kErrorBinadeMin + 1;  // binade −24
        check(h1 == h2 && h1[bin] == static_cast<uint64_t>(rows * cols), std::string(simd.simd) + " errorSums histogram, one binade");
      }
      if (specials) continue;  // NVFP4 input has no NaN/Inf (the API rejects it)
      for (int32_t rounding : {kNearest, kStochastic}) {
        for (float t : {1e-3f, 0.0172f, 1.1754944e-38f}) {
          BlockArgs a{};
          a.src = src; a.dtype = dtype; a.rows = rows; a.cols = cols; a.format = kE2m1; a.rounding = rounding;
          a.seed = 99; a.tensorScale = t;
          const int64_t bytes = rows * packedRowBytes(cols, kNvfp4Block, 4);
          std::vector<uint8_t> d1(bytes), s1(rows * 63), d2(bytes), s2(rows * 63);
          a.data = d1.data(); a.scales = s1.data();
          kScalarKernels.quantizeNvfp4(a, 0, rows);
          a.data = d2.data(); a.scales = s2.data();
          simd.quantizeNvfp4(a, 0, rows);
          const std::string what = std::string(simd.simd) + " nvfp4 dtype " + std::to_string(dtype) + " rounding " + std::to_string(rounding);
          check(d1 == d2 && s1 == s2, what);
          std::vector<float> o1(rows * cols), o2(rows * cols);
          a.out = o1.data(); a.data = d1.data(); a.scales = s1.data();
          kScalarKernels.dequantizeNvfp4(a, 0, rows);
          a.out = o2.data();
          simd.dequantizeNvfp4(a, 0, rows);
          check(std::memcmp(o1.data(), o2.data(), o1.size() * 4) == 0, "dequantize " + what);
        }
      }
      check(kScalarKernels.absMax(src, dtype, 0, rows * cols) == simd.absMax(src, dtype, 0, rows * cols) ||
                (kScalarKernels.absMax(src, dtype, 0, rows * cols) > 0x7f800000u && simd.absMax(src, dtype, 0, rows * cols) > 0x7f800000u),
            std::string(simd.simd) + " absMax");
    }
  }
}

}  // namespace

// The bit-plane row kernels against bitplaneRowsScalar (random words: every count is exact), and
// the whole product through the kernel this CPU's dispatch picks against a plain integer GEMM.
void compareBitplaneRows(const char* name, BitplaneRowsKernel kernel) {
  std::mt19937_64 rng(7);
  for (int64_t n : {1, 7, 8, 9, 33}) {
    for (int64_t words : {1, 2, 5}) {
      for (int bits : {1, 4, 8}) {
        for (int rowCount : {1, 2}) {
          for (bool ternary : {false, true}) {
            std::vector<uint64_t> a(static_cast<size_t>(2 * bits * words)), pos(static_cast<size_t>(signsWordCount(n, words * 64))), nz(pos.size());
            for (auto& w : a) w = rng();
            for (auto& w : pos) w = rng();
            for (auto& w : nz) w = rng();
            std::vector<int32_t> out[2][2], ref[2][2];
            BitplaneRows r{}, q{};
            for (int t = 0; t < 2; t++) {
              for (int u = 0; u < 2; u++) {
                out[t][u].assign(static_cast<size_t>(n), -1);
                ref[t][u].assign(static_cast<size_t>(n), -1);
              }
              r.a[t] = q.a[t] = a.data() + t * bits * words;
              r.rPos[t] = out[t][0].data();
              r.rNonzero[t] = out[t][1].data();
              q.rPos[t] = ref[t][0].data();
              q.rNonzero[t] = ref[t][1].data();
            }
            r.rowCount = q.rowCount = rowCount;
            r.bits = q.bits = bits;
            r.words = q.words = words;
            r.pos = q.pos = pos.data();
            r.nonzero = q.nonzero = ternary ? nz.data() : nullptr;
            r.n = q.n = n;
            kernel(r);
            bitplaneRowsScalar(q);
            check(out[0][0] == ref[0][0] && out[1][0] == ref[1][0] && out[0][1] == ref[0][1] && out[1][1] == ref[1][1],
                  std::string(name) + " bit-plane rows n=" + std::to_string(n) + " words=" + std::to_string(words) + " bits=" + std::to_string(bits));
          }
        }
      }
    }
  }
}

void checkBitplaneProduct() {
  std::mt19937 rng(11);
  for (int64_t m : {1, 3, 6}) {
    for (int64_t n : {1, 9, 17}) {
      for (int64_t k : {1, 63, 64, 65, 200}) {
        const int bits = 3;
        std::vector<uint8_t> codes(static_cast<size_t>(m * k));
        std::vector<float> x(static_cast<size_t>(n * k));
        for (auto& c : codes) c = static_cast<uint8_t>(rng() % 8);
        for (auto& v : x) v = static_cast<float>(static_cast<int>(rng() % 3) - 1);  // −1, 0, +1
        std::vector<uint64_t> planes(static_cast<size_t>(m * bits * bitplaneWords(k)));
        std::vector<uint64_t> signs(static_cast<size_t>(2 * signsWordCount(n, k)));
        check(packBitPlanes(codes.data(), m, k, bits, false, planes.data()) == -1, "packBitPlanes");
        packSigns(x.data(), n, k, false, true, signs.data());
        std::vector<int32_t> out(static_cast<size_t>(m * n));
        BitplaneMatmulArgs args{};
        args.planes = planes.data();
        args.m = m;
        args.bits = bits;
        args.signs = signs.data();
        args.n = n;
        args.length = k;
        args.ternary = true;
        args.rowsPerGroup = 1;
        args.outInt = out.data();
        bitplaneMatmul(args);
        for (int64_t i = 0; i < m; i++)
          for (int64_t j = 0; j < n; j++) {
            int32_t want = 0;
            for (int64_t t = 0; t < k; t++) want += codes[static_cast<size_t>(i * k + t)] * static_cast<int32_t>(x[static_cast<size_t>(j * k + t)]);
            check(out[static_cast<size_t>(i * n + j)] == want, std::string("bit-plane product (") + activeBitplaneKernel().simd + ") m=" + std::to_string(m) +
                                                                  " n=" + std::to_string(n) + " k=" + std::to_string(k));
          }
      }
    }
  }
}

// MXINT8 activations for the product tests: m rows of k codes (±127/−128 one time in
// `edgeEvery`, the int32 edge of the dots), zero padding to whole blocks of 32, power-of-two block
// scales. `a` points into the vectors: keep the object in place.
struct TestActivations {
  std::vector<int8_t> codes;
  std::vector<float> scales;
  Int8Activations a;
  TestActivations(std::mt19937& rng, int64_t m, int64_t k, uint32_t edgeEvery) {
    const int64_t padded = (k + 31) / 32 * 32;
    codes.assign(static_cast<size_t>(m * padded), 0);
    for (int64_t r = 0; r < m; r++)
      for (int64_t i = 0; i < k; i++)
        codes[static_cast<size_t>(r * padded + i)] =
            static_cast<int8_t>(rng() % edgeEvery == 0 ? (rng() % 2 ? 127 : -128) : static_cast<int>(rng() % 256) - 128);
    scales.resize(static_cast<size_t>(m * padded / 32));
    for (auto& v : scales) v = std::ldexp(1.0f, static_cast<int>(rng() % 16) - 8);
    a.codes = codes.data();
    a.blockScales = scales.data();
    a.rows = m;
    a.paddedK = padded;
  }
};

// FP4 tiles (matmul.h, matmulFp4Int8*): each SIMD kernel of this build (AVX-512 VNNI with and
// without VBMI and AVX2 on x86-64; NEON on AArch64) against the scalar kernel, bit for bit, on
// E2M1 weights with float lane scales (any multiplier, so most units take the plain order) against
// MXINT8 activations with ±127/−128 runs, units of 16 and 32, ragged shapes, with and without a bias.
void checkFp4Tiles() {
  std::mt19937 rng(9);
  std::vector<std::pair<const char*, Fp4Int8Kernel>> kernels;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) kernels.push_back({"avx2", matmulFp4Int8Avx2});
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) kernels.push_back({"avx512-vnni", matmulFp4Int8Avx512});
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi")) kernels.push_back({"avx512-vnni-vbmi", matmulFp4Int8Avx512Vbmi});
#elif defined(__aarch64__)
  kernels.push_back({"neon", matmulFp4Int8Neon});
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) kernels.push_back({"neon-dotprod", matmulFp4Int8NeonDotprod});
  else std::printf("fp4 tiles: this CPU has no dot-product extension: neon-dotprod not compared\n");
#endif
  int64_t compared = 0;
  for (int64_t blockSize : {16, 32})
    for (int64_t m : {1, 2, 3, 5, 6, 7, 9})  // 2–3: one step of them all; 5–7: a whole step of 4, then one of the 1–3 rows left
      for (int64_t n : {1, 16, 37})
        for (int64_t k : {8, 40, 96, 300}) {
          const int64_t units = (k + blockSize - 1) / blockSize, paddedK = units * blockSize;
          std::vector<uint8_t> nibbles(static_cast<size_t>(n * paddedK / 2), 0);
          for (int64_t r = 0; r < n; r++)
            for (int64_t i = 0; i < k; i++) {
              const uint8_t code = static_cast<uint8_t>(rng() % 16);
              nibbles[static_cast<size_t>((r * paddedK + i) / 2)] |= static_cast<uint8_t>(i % 2 ? code << 4 : code);
            }
          std::vector<float> wScales(static_cast<size_t>(n * units));
          for (auto& v : wScales) v = rng() % 3 == 0 ? std::ldexp(1.0f, static_cast<int>(rng() % 20) - 10) : static_cast<float>(rng() % 100000) / 997.0f;
          TestActivations activations(rng, m, k, 4);
          Int8Activations& a = activations.a;
          std::vector<float> bias(static_cast<size_t>(n));
          for (auto& v : bias) v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 64.0f;
          PackedFp4Weights b;
          repackFp4Weights(nibbles.data(), wScales.data(), nullptr, nullptr, n, k, blockSize, b);
          prepareInt8Activations(a, b);
          for (const float* withBias : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
            std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
            matmulFp4Int8Scalar(a, b, withBias, want.data(), 0, b.tiles);
            for (const auto& [name, kernel] : kernels) {
              std::fill(got.begin(), got.end(), -1.0f);
              kernel(a, b, withBias, got.data(), 0, b.tiles);
              check(std::memcmp(got.data(), want.data(), got.size() * 4) == 0,
                    std::string("fp4 tiles ") + name + " unit " + std::to_string(blockSize) + " m=" + std::to_string(m) + " n=" + std::to_string(n) +
                        " k=" + std::to_string(k) + (withBias ? " bias" : "") + ": vs scalar");
              compared++;
            }
          }
        }
  std::printf("fp4 tiles: %lld products of %zu SIMD kernel(s) compared with the scalar kernel\n", static_cast<long long>(compared), kernels.size());
  check(compared > 0, "fp4 tiles: a SIMD kernel ran");
}

// Byte-plane matmul (matmul_planes.h): the scalar kernel against the defined order computed here
// with an exact int64 dot, and the AVX-512 VNNI kernel against the scalar one, bit for bit, for 1
// and 2 planes, split values (h and low bits: random low bits everywhere, and E4M3-like values,
// multiples of 8 but for a few codes, so that some tile-units have low bits and most do not), units
// of 16 and 32, ragged shapes, and dots near the int32 edge.
void checkPlanes() {
  std::mt19937 rng(5);
  int64_t unitsWithLow = 0, unitsWithoutLow = 0;  // E4M3-like values: both kinds of tile-unit ran
  [[maybe_unused]] int64_t planesNeonCompared = 0, planesDotprodCompared = 0;
  [[maybe_unused]] int64_t planesScaleStorages[4] = {};  // codes-form weights by ScaleStorage
  for (int kind = 0; kind < 4; kind++) {
    const int planes = kind == 0 ? 1 : 2;
    const bool split = kind >= 2;
    const int32_t lo = kind == 0 ? -128 : kind == 1 ? -32768 : -229376;
    const int32_t hi = kind == 0 ? 127 : kind == 1 ? 32767 : 229376;
    std::vector<int32_t> table(256);
    for (int c = 1; c < 256; c++) table[c] = c < 8 ? (c % 2 ? hi : lo) : lo + static_cast<int32_t>(rng() % static_cast<uint32_t>(hi - lo + 1));
    if (kind == 3)
      for (int c = 8; c < 256; c++) table[c] = c == 61 ? table[c] | 1 : table[c] & ~7;
    table[0] = 0;  // padding elements hold code 0
    for (int64_t blockSize : {16, 32})
      for (int64_t m : {1, 3, 4, 7, 9, 12, 14, 21})  // rows past the last whole step of 4 or 8: 1–6
        for (int64_t n : {1, 16, 17, 40, 100})
          for (int64_t k : {1, 31, 64, 100, 4500}) {
            if (k == 4500 && m < 12) continue;  // two stretches of the from-codes kernel's rebuild
            const int64_t units = (k + blockSize - 1) / blockSize, paddedK = units * blockSize;
            const int64_t aPadded = (k + 31) / 32 * 32;
            std::vector<uint8_t> codes(static_cast<size_t>(n * paddedK), 0);
            for (int64_t r = 0; r < n; r++)
              for (int64_t i = 0; i < k; i++) codes[static_cast<size_t>(r * paddedK + i)] = static_cast<uint8_t>(rng() % 4 == 0 ? rng() % 8 : rng() % 256);
            // Block multipliers of three kinds (the codes form keeps them as bytes where it can):
            // mixed floats (some not powers of two), MX powers of two, FGMP's f32(T · E4M3 scale) or F.
            const int scaleKind = static_cast<int>(rng() % 3);
            const FgmpMultipliers fgmp{std::ldexp(1.0f + static_cast<float>(rng() % 1000) / 1000.0f, static_cast<int>(rng() % 40) - 20),
                                       static_cast<float>(rng() % 1000 + 1) / 37.0f};
            std::vector<float> wScales(static_cast<size_t>(n * units));
            for (auto& v : wScales) {
              if (scaleKind == 0) v = rng() % 3 == 0 ? static_cast<float>(rng() % 1000) / 7.0f : std::ldexp(1.0f, static_cast<int>(rng() % 20) - 10);
              else if (scaleKind == 1) v = std::ldexp(1.0f, static_cast<int>(rng() % 254) - 126);
              else v = rng() % 3 == 0 ? fgmp.fp8Scale : fgmp.tensorScale * static_cast<float>(std::ldexp(e4m3AsInt(static_cast<uint8_t>(rng() % 127)), -9));
            }
            TestActivations activations(rng, m, k, 3);
            Int8Activations& a = activations.a;
            const std::vector<int8_t>& aCodes = activations.codes;
            const std::vector<float>& aScales = activations.scales;
            PackedPlaneWeights b;
            repackPlaneWeights(codes.data(), table.data(), 9, wScales.data(), n, k, blockSize, b);
            prepareInt8ActivationsForPlanes(a, b);
            std::vector<float> scalar(static_cast<size_t>(m * n)), simd(static_cast<size_t>(m * n));
            matmulPlanesScalar(a, b, nullptr, scalar.data(), 0, b.tiles);
            const std::string what = "planes kind " + std::to_string(kind) + " unit " + std::to_string(blockSize) + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
            check(b.planeCount == planes && (b.lowShift == 3) == split, what + ": plane count and split");
            if (kind == 3)
              for (uint8_t f : b.lowQuads) (f ? unitsWithLow : unitsWithoutLow)++;
            for (int64_t r = 0; r < m; r++)
              for (int64_t c = 0; c < n; c++) {
                float acc = 0.0f;
                for (int64_t j = 0; j < units; j++) {
                  int64_t dot = 0;
                  for (int64_t i = 0; i < blockSize; i++)
                    dot += int64_t(aCodes[static_cast<size_t>(r * aPadded + j * blockSize + i)]) * table[codes[static_cast<size_t>(c * paddedK + j * blockSize + i)]];
                  const float d = static_cast<float>(std::ldexp(static_cast<double>(dot), -15));
                  const float sc = aScales[static_cast<size_t>(r * aPadded / 32 + j * blockSize / 32)] * wScales[static_cast<size_t>(c * units + j)];
                  const float partial = d * sc;
                  acc = acc + partial;
                }
                check(floatToBits(scalar[static_cast<size_t>(r * n + c)]) == floatToBits(acc), what + ": scalar vs the defined order");
              }
#if defined(__x86_64__)
            if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")) {
              matmulPlanesAvx512(a, b, nullptr, simd.data(), 0, b.tiles);
              check(std::memcmp(simd.data(), scalar.data(), simd.size() * 4) == 0, what + ": avx512-vnni vs scalar");
            }
#endif
#if defined(__aarch64__)
            {
              PackedPlaneWeights b16;
              repackPlaneWeights(codes.data(), table.data(), 9, wScales.data(), n, k, blockSize, b16, PlaneForm::Int16);
              std::fill(simd.begin(), simd.end(), 0.0f);
              matmulPlanesNeon(a, b16, nullptr, simd.data(), 0, b16.tiles);
              check(std::memcmp(simd.data(), scalar.data(), simd.size() * 4) == 0, what + ": neon (int16 planes) vs scalar");
              planesNeonCompared++;
            }
            if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) {  // byte planes (b, the scalar kernel's form), sdot
              std::fill(simd.begin(), simd.end(), 0.0f);
              matmulPlanesNeonDotprod(a, b, nullptr, simd.data(), 0, b.tiles / 2);  // two tile ranges, as two threads take them
              matmulPlanesNeonDotprod(a, b, nullptr, simd.data(), b.tiles / 2, b.tiles);
              check(std::memcmp(simd.data(), scalar.data(), simd.size() * 4) == 0, what + ": neon-dotprod (byte planes) vs scalar");
              planesDotprodCompared++;
            }
#endif
#if defined(__x86_64__)
            if (__builtin_cpu_supports("avx2")) {
              PackedPlaneWeights b16;
              repackPlaneWeights(codes.data(), table.data(), 9, wScales.data(), n, k, blockSize, b16, PlaneForm::Int16);
              check(b16.planes.empty() && !b16.h16.empty() && b16.lowQuads == b.lowQuads, what + ": int16 form");
              std::fill(simd.begin(), simd.end(), 0.0f);
              matmulPlanesAvx2(a, b16, nullptr, simd.data(), 0, b16.tiles);
              check(std::memcmp(simd.data(), scalar.data(), simd.size() * 4) == 0, what + ": avx2 (int16 planes) vs scalar");
            }
            if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi")) {
              PackedPlaneWeights bc;
              repackPlaneWeights(codes.data(), table.data(), 9, wScales.data(), n, k, blockSize, bc, PlaneForm::Codes, scaleKind == 2 ? &fgmp : nullptr);
              check(split ? bc.planes.empty() && bc.low.empty() && !bc.codes.empty() : bc.codes.empty() && bc.planes == b.planes,
                    what + ": codes form (split weights only)");
              check(bc.lowQuads == b.lowQuads, what + ": codes form's low-bit groups");
              // Its multipliers: bytes for the powers of two and FGMP's pair, each decoding to the float's bits.
              const ScaleStorage wantStorage = scaleKind == 1 ? ScaleStorage::E8m0 : scaleKind == 2 ? ScaleStorage::E4m3OrOther : bc.scaleStorage;
              check(bc.scaleStorage == wantStorage && (bc.scaleStorage == ScaleStorage::Float32) == bc.compactScales.empty() &&
                        bc.scales.empty() != bc.compactScales.empty(), what + ": codes form's multiplier storage");
              planesScaleStorages[static_cast<int>(bc.scaleStorage)]++;
              bool sameScales = true;
              for (int64_t tu = 0; tu < b.tiles * b.units; tu++)
                for (int lane = 0; lane < kTileColumns; lane++) sameScales = sameScales && floatToBits(laneScale(bc, tu, lane)) == floatToBits(laneScale(b, tu, lane));
              check(sameScales, what + ": codes form's multipliers decode to the floats' bits");
              std::fill(simd.begin(), simd.end(), 0.0f);
              matmulPlanesFromCodesAvx512Vbmi(a, bc, nullptr, simd.data(), 0, bc.tiles);
              check(std::memcmp(simd.data(), scalar.data(), simd.size() * 4) == 0, what + ": from codes (avx512-vbmi) vs scalar");
              // With a bias (added once, after the last unit, however the units were split).
              std::vector<float> bias(static_cast<size_t>(n)), scalarBias(scalar.size());
              for (auto& v : bias) v = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 64.0f;
              matmulPlanesScalar(a, b, bias.data(), scalarBias.data(), 0, b.tiles);
              matmulPlanesFromCodesAvx512Vbmi(a, bc, bias.data(), simd.data(), 0, bc.tiles);
              check(std::memcmp(simd.data(), scalarBias.data(), simd.size() * 4) == 0, what + ": from codes with bias vs scalar");
            }
#endif
          }
  }
  check(unitsWithLow > 0 && unitsWithoutLow > 0, "planes: E4M3-like values give tile-units with and without low bits");
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi"))
    check(planesScaleStorages[static_cast<int>(ScaleStorage::Float32)] > 0 && planesScaleStorages[static_cast<int>(ScaleStorage::E8m0)] > 0 &&
              planesScaleStorages[static_cast<int>(ScaleStorage::E4m3OrOther)] > 0,
          "planes: the codes form kept float, E8M0 and FGMP byte multipliers");
#endif
#if defined(__aarch64__)
  check(planesNeonCompared > 0, "planes: the NEON kernel ran");
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) check(planesDotprodCompared > 0, "planes: the NEON dot-product kernel ran");
  else std::printf("planes: this CPU has no dot-product extension: neon-dotprod not compared\n");
#endif
}

// FGMP candidates of a SIMD table (fgmp_simd.h, one lane per block) against the scalar reference
// (fgmp.cc), byte for byte and impact for impact: Gaussian rows with outliers, zero blocks, values
// past the FP8 range (saturation), float subnormals, widths that leave a partial block and a
// partial group of blocks; clipping on and off; Fisher weights per element, per input channel and
// none; float32, bf16 and f16 sources (f16 with subnormals).
void compareFgmp(const QuantizeKernels& simd) {
  std::mt19937 rng(23);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int compared = 0, clippedAway = 0;
  for (int32_t dtype : {kF32, kBf16, kF16}) {
  for (int64_t rows : {1, 3}) {
    for (int64_t cols : {5, 16, 40, 256, 530}) {
      for (int fisherKind = 0; fisherKind < 3; fisherKind++) {
        for (bool clipping : {false, true}) {
          std::vector<float> x(static_cast<size_t>(rows * cols)), fisher(static_cast<size_t>(fisherKind == 1 ? rows * cols : cols));
          std::vector<uint16_t> h(x.size());
          for (size_t i = 0; i < x.size(); i++) {
            const int kind = static_cast<int>(rng() % 50);
            x[i] = kind == 0 ? 0.0f : kind == 1 ? normal(rng) * 3000.0f : kind == 2 ? std::ldexp(normal(rng), -130) : normal(rng) * 0.05f;
            if ((i / 16) % 7 == 3) x[i] = 0.0f;  // whole zero blocks
            if (dtype == kBf16) h[i] = static_cast<uint16_t>(floatToBits(x[i]) >> 16);
            if (dtype == kF16) {  // any finite f16: normals of every binade, subnormals, ±0
              uint16_t v = static_cast<uint16_t>(rng());
              if ((v & 0x7c00) == 0x7c00) v &= 0xfbff;
              h[i] = (i / 16) % 7 == 3 ? 0 : v;
            }
            if (dtype != kF32) x[i] = bitsToFloat(loadBits(h.data(), dtype, static_cast<int64_t>(i)));  // the values the kernels see
          }
          for (float& f : fisher) f = std::fabs(normal(rng)) * static_cast<float>(1 + rng() % 100);
          const int64_t blocks = rows * ((cols + 15) / 16);
          float amax = 0;
          for (float v : x) amax = std::max(amax, std::fabs(v));
          FgmpArgs a{};
          a.x = dtype == kF32 ? static_cast<const void*>(x.data()) : static_cast<const void*>(h.data());
          a.dtype = dtype;
          a.rows = rows;
          a.cols = cols;
          a.fisher = fisherKind == 0 ? nullptr : fisher.data();
          a.fisherPerElement = fisherKind == 1;
          a.tensorScale = amax > 0 ? amax / (6.0f * 448.0f) : 1.0f;
          a.fp8Scale = amax > 0 ? amax / 300.0f : 1.0f;  // some values past the E4M3 range
          a.clipping = clipping;
          std::vector<double> i1(static_cast<size_t>(blocks), -1), i2(static_cast<size_t>(blocks), -2);
          std::vector<uint8_t> c1(static_cast<size_t>(blocks * 16), 0xaa), c2(static_cast<size_t>(blocks * 16), 0x55), s1(static_cast<size_t>(blocks), 0xaa),
              s2(static_cast<size_t>(blocks), 0x55), e1(static_cast<size_t>(blocks * 16), 0xaa), e2(static_cast<size_t>(blocks * 16), 0x55);
          a.impacts = i1.data();
          a.fp4Codes = c1.data();
          a.fp4Scales = s1.data();
          a.fp8Codes = e1.data();
          kScalarKernels.fgmpCandidates(a, 0, rows);
          a.impacts = i2.data();
          a.fp4Codes = c2.data();
          a.fp4Scales = s2.data();
          a.fp8Codes = e2.data();
          simd.fgmpCandidates(a, 0, rows);
          const std::string what = std::string(simd.simd) + " fgmpCandidates dtype=" + std::to_string(dtype) + " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                                   " fisher=" + std::to_string(fisherKind) + (clipping ? " clipping" : "");
          check(c1 == c2 && s1 == s2 && e1 == e2, what + ": codes and scales");
          check(std::memcmp(i1.data(), i2.data(), i1.size() * sizeof(double)) == 0, what + ": impacts");
          if (clipping) {  // how often the clipping search moved off the recipe's scale
            FgmpArgs plain = a;
            std::vector<uint8_t> s3(static_cast<size_t>(blocks)), c3(static_cast<size_t>(blocks * 16)), e3(static_cast<size_t>(blocks * 16));
            std::vector<double> i3(static_cast<size_t>(blocks));
            plain.clipping = false;
            plain.impacts = i3.data();
            plain.fp4Codes = c3.data();
            plain.fp4Scales = s3.data();
            plain.fp8Codes = e3.data();
            kScalarKernels.fgmpCandidates(plain, 0, rows);
            for (int64_t b = 0; b < blocks; b++) clippedAway += s3[static_cast<size_t>(b)] != s1[static_cast<size_t>(b)];
          }
          compared++;
        }
      }
    }
  }
  }
  check(clippedAway > 20, std::string(simd.simd) + " fgmpCandidates: the clipping search chose other scales than the recipe's");
  std::printf("%s fgmpCandidates: %d cases byte for byte with the scalar kernel (%d blocks clipped to a smaller scale)\n", simd.simd, compared, clippedAway);
}

// The aligned decoded-operand product (matmul_aligned.h) against the reference order
// (matmulDecodedScalar), bit for bit: short-float row-units that take the integer path, and planted
// ones that must not — spans over 15, span sums one either side of the int32 limit with every
// product at its largest, Inf/NaN, float subnormals, exponents at the ends of the normal range,
// all-zero units — with E8M0-like and arbitrary block multipliers, units of 16 and 32.
std::vector<float> alignedOperand(int64_t rows, int64_t paddedCols, int64_t unit, uint32_t seed, int32_t wideSpan, bool mostlyShort) {
  std::mt19937 rng(seed);
  std::vector<float> v(static_cast<size_t>(rows * paddedCols), 0.0f);
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t k0 = 0; k0 < paddedCols; k0 += unit) {
      float* u = v.data() + r * paddedCols + k0;
      const int kind = mostlyShort && rng() % 40 ? 7 : static_cast<int>(rng() % 14);
      const int base = static_cast<int>(rng() % 40) - 20;
      for (int64_t i = 0; i < unit; i++) {
        float x;
        switch (kind) {
          case 0: x = 0.0f; break;                                                                  // all zero (and −0)
          case 1: x = std::ldexp(static_cast<float>((1 << wideSpan) - 1), base); break;             // largest products at a chosen span
          case 2: x = std::ldexp(static_cast<float>(8 + rng() % 8), base - static_cast<int>(rng() % 20)); break;  // span over 15
          case 3: x = i == 3 ? (rng() % 2 ? INFINITY : NAN) : 1.0f; break;
          case 4: x = std::ldexp(static_cast<float>(1 + rng() % 7), -140 - static_cast<int>(rng() % 6)); break;  // float subnormals
          case 5: x = std::ldexp(static_cast<float>(1 + rng() % 7), 60 + static_cast<int>(rng() % 6)); break;     // products near the top
          case 6: x = std::ldexp(static_cast<float>(1 + rng() % 7), -70 - static_cast<int>(rng() % 6)); break;    // products below 2^-126
          case 9:  // hi at its widest (15 bits) and a lo element 25 binades below hi: the float64 bound of the split
            x = i == 5 ? std::ldexp(1.0f, base - 40) : std::ldexp(static_cast<float>((1 << 15) - 1 - static_cast<int>(rng() % 3) * 2), base - 15);
            break;
          case 8:  // one tiny element among short ones: span over 15, two forms (hi, lo)
            x = std::ldexp(static_cast<float>(i == 5 ? 1 + rng() % 7 : 4 + rng() % 4), i == 5 ? base - 16 - static_cast<int>(rng() % 12) : base);
            break;
          default: x = std::ldexp(static_cast<float>(4 + rng() % 4), base - static_cast<int>(rng() % 6));        // E5M2-like, short span
        }
        if (kind != 1 && rng() % 2) x = -x;
        if (kind == 0 && rng() % 2) x = -0.0f;
        u[i] = x;
      }
    }
  }
  return v;
}

// Same bits, any NaN equal to any NaN (which NaN an operation makes is the CPU's; the facade writes
// every NaN of a product as 0x7fc00000).
bool sameOutputs(const std::vector<float>& x, const std::vector<float>& y) {
  for (size_t i = 0; i < x.size(); i++)
    if (floatToBits(x[i]) != floatToBits(y[i]) && !(std::isnan(x[i]) && std::isnan(y[i]))) return false;
  return true;
}

void checkAligned() {
  std::mt19937 rng(7);
  int fastPairs = 0, fallbackPairs = 0, blockFast = 0, blockSlow = 0, splits = 0;
  for (int64_t aBlock : {16, 32}) {
    for (int64_t bBlock : {16, 32}) {
      for (int64_t m : {1, 5, 9}) {
        for (int64_t n : {1, 17, 40}) {
          for (int64_t k : {16, 48, 100}) {
            const int64_t unit = std::min(aBlock, bBlock), units = (k + unit - 1) / unit;
            const int32_t spanA = 12 + static_cast<int32_t>(rng() % 3), spanB = 31 - unitBits(unit) - spanA + static_cast<int32_t>(rng() % 3) - 1;
            const int64_t aBlocks = (k + aBlock - 1) / aBlock, bBlocks = (k + bBlock - 1) / bBlock;
            const int64_t aCols = aBlocks * aBlock, bCols = bBlocks * bBlock;
            const bool mostlyShort = rng() % 2;
            std::vector<float> av = alignedOperand(m, aCols, unit, static_cast<uint32_t>(rng()), spanA, mostlyShort);
            std::vector<float> bv = alignedOperand(n, bCols, unit, static_cast<uint32_t>(rng()), spanB, mostlyShort);
            for (int64_t r = 0; r < m; r++) std::fill(av.begin() + r * aCols + k, av.begin() + (r + 1) * aCols, 0.0f);  // padding: +0
            for (int64_t r = 0; r < n; r++) std::fill(bv.begin() + r * bCols + k, bv.begin() + (r + 1) * bCols, 0.0f);
            std::vector<float> as(static_cast<size_t>(m * aBlocks)), bs(static_cast<size_t>(n * bBlocks)), bias(static_cast<size_t>(n));
            // Block multipliers: mixed (some not powers of two), all powers of two (the power-of-two
            // epilogue), and powers of two near the ends of the float range (its range tests).
            const int scaleKind = static_cast<int>(rng() % 3);
            const auto multiplier = [&](float other) {
              if (scaleKind == 2) return std::ldexp(1.0f, static_cast<int>(rng() % 2 ? 100 + rng() % 27 : -(100 + static_cast<int>(rng() % 49))));
              if (scaleKind == 1 || rng() % 3) return std::ldexp(1.0f, static_cast<int>(rng() % 20) - 10);
              return static_cast<float>(rng() % 1000) / other;
            };
            for (float& x : as) x = multiplier(999.0f);
            for (float& x : bs) x = multiplier(777.0f);
            for (float& x : bias) x = static_cast<float>(static_cast<int>(rng() % 200) - 100) / 7.0f;
            const DecodedOperand a{av.data(), as.data(), m, k, aCols, aBlock, aBlocks};
            const DecodedOperand b{bv.data(), bs.data(), n, k, bCols, bBlock, bBlocks};
            const std::string what = "aligned m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k) + " blocks " +
                                     std::to_string(aBlock) + "/" + std::to_string(bBlock);
            std::vector<float> ref(static_cast<size_t>(m * n)), got(ref.size());
            matmulDecodedScalar(a, b, bias.data(), ref.data(), 0, n);
            AlignedRows aa, bb;
            alignRowsInit(aa, m, units, unit);
            alignRows(a, unit, 0, m, aa);
            splitWideRowUnits(a, aa);
            splits += static_cast<int>(aa.splitForms.size() / 4);
            alignRowsInit(bb, n, units, unit);
            alignRows(b, unit, 0, n, bb);
            for (int64_t r = 0; r < m; r++)
              for (int64_t c = 0; c < n; c++)
                for (int64_t j = 0; j < units; j++)
                  (alignedPairExact(aa.spans[r * units + j], aa.exps[r * units + j], bb.spans[c * units + j], bb.exps[c * units + j], unit) ? fastPairs : fallbackPairs)++;
            {  // how often the AVX-512 kernel's whole-block power-of-two epilogue applies (6 rows, 32 columns)
              AlignedRowBlocks blocks;
              summarizeRowBlocks(a, aa, 6, blocks);
              AlignedPanel panel;
              for (int64_t col0 = 0; col0 < n; col0 += 32) {
                fillAlignedPanel(b, unit, col0, std::min<int64_t>(32, n - col0), 32, panel);
                for (int64_t blk = 0; blk * 6 < m; blk++)
                  for (int64_t j = 0; j < units; j++)
                    (rowBlockFast(blocks.blocks[static_cast<size_t>(blk * units + j)], panel, j, 31 - unitBits(unit)) ? blockFast : blockSlow)++;
              }
            }
            matmulAlignedScalar(a, aa, b, bias.data(), got.data(), 0, n);
            check(sameOutputs(got, ref), what + ": scalar twin vs the defined order");
#if defined(__x86_64__)
            if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
              AlignedRows simd;
              alignRowsInit(simd, m, units, unit);
              alignRows(a, unit, 0, m, simd, alignRowUnitAvx512);
              splitWideRowUnits(a, simd);
              check(simd.pairs == aa.pairs && simd.spans == aa.spans && simd.exps == aa.exps && simd.split == aa.split && simd.splitLoPairs == aa.splitLoPairs, what + ": alignRowUnitAvx512 vs scalar");
              std::fill(got.begin(), got.end(), 0.0f);
              matmulAlignedAvx512(a, aa, b, bias.data(), got.data(), 0, n / 2);  // two column ranges, as two threads take them
              matmulAlignedAvx512(a, aa, b, bias.data(), got.data(), n / 2, n);
              check(sameOutputs(got, ref), what + ": avx512-vnni vs the defined order");
            }
            if (__builtin_cpu_supports("avx2")) {
              AlignedRows simd;
              alignRowsInit(simd, m, units, unit);
              alignRows(a, unit, 0, m, simd, alignRowUnitAvx2);
              splitWideRowUnits(a, simd);
              check(simd.pairs == aa.pairs && simd.spans == aa.spans && simd.exps == aa.exps && simd.split == aa.split, what + ": alignRowUnitAvx2 vs scalar");
              std::fill(got.begin(), got.end(), 0.0f);
              matmulAlignedAvx2(a, aa, b, bias.data(), got.data(), 0, n / 2);
              matmulAlignedAvx2(a, aa, b, bias.data(), got.data(), n / 2, n);
              check(sameOutputs(got, ref), what + ": avx2 vs the defined order");
            }
#elif defined(__aarch64__)
            {
              AlignedRows simd;
              alignRowsInit(simd, m, units, unit);
              alignRows(a, unit, 0, m, simd, alignRowUnitNeon);
              splitWideRowUnits(a, simd);
              check(simd.pairs == aa.pairs && simd.spans == aa.spans && simd.exps == aa.exps && simd.split == aa.split, what + ": alignRowUnitNeon vs scalar");
            }
            std::fill(got.begin(), got.end(), 0.0f);
            matmulAlignedNeon(a, aa, b, bias.data(), got.data(), 0, n / 2);
            matmulAlignedNeon(a, aa, b, bias.data(), got.data(), n / 2, n);
            check(sameOutputs(got, ref), what + ": neon vs the defined order");
#endif
          }
        }
      }
    }
  }
  check(fastPairs > 1000 && fallbackPairs > 1000 && blockFast > 50 && blockSlow > 50 && splits > 100,
        "aligned: the integer path, the fallback, split row-units and the block power-of-two epilogue all exercised");
  std::printf("aligned decoded product: %d row-unit pairs on the integer path, %d on the float64 fallback; %d of %d row-block units with the power-of-two epilogue; %d split row-units\n",
              fastPairs, fallbackPairs, blockFast, blockFast + blockSlow, splits);
}

// Row-unit forms read from FP8 codes (matmul_aligned_avx512_vbmi.cc) against the forms of the
// decoded values, entry for entry — the AlignedRows of a and the panels of b — and the product with
// b's codes against the defined order. Units of random codes over every code of E4M3 and E5M2
// (NaN, ±Inf, subnormals, ±0), units of one or two neighbouring exponents (the integer path), all-zero
// units, 1–19 units per row (a partial group of 16) and panels with padding columns.
void checkAlignedCodes() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512vnni")) {
    std::printf("aligned from codes: no AVX-512 VBMI here, skipped\n");
    return;
  }
  std::mt19937 rng(11);
  int units16 = 0, shortUnits = 0, wideUnits = 0, specialUnits = 0;
  for (int32_t element : {kE4m3, kE5m2}) {
    const ElementFormat& f = kElementFormats[element];
    for (int64_t m : {1, 7, 33}) {
      for (int64_t n : {1, 20, 45}) {
        for (int64_t units : {1, 5, 16, 19}) {
          const int64_t k = units * 32 - static_cast<int64_t>(rng() % 7), cols = units * 32;
          const auto operand = [&](int64_t rows, std::vector<uint8_t>& codes, std::vector<float>& values) {
            codes.assign(static_cast<size_t>(rows * cols), 0);
            for (int64_t r = 0; r < rows; r++) {
              for (int64_t j = 0; j < units; j++) {
                const int kind = static_cast<int>(rng() % 6);
                const int field = 1 + static_cast<int>(rng() % ((1 << (7 - f.mantissaBits)) - 2));
                for (int64_t i = 0; i < 32 && j * 32 + i < k; i++) {
                  uint8_t c;
                  if (kind == 0) c = rng() % 2 ? 0x80 : 0;                                        // ±0
                  else if (kind == 1) c = static_cast<uint8_t>(rng());                            // any code
                  else if (kind == 2 && i == 7) c = static_cast<uint8_t>(f.signBit | 0x7f);       // a NaN (E5M2: NaN) in short codes
                  else {  // one or two neighbouring exponent fields, zeros among them: short spans
                    const int fi = std::max(0, field - static_cast<int>(rng() % 2));
                    c = static_cast<uint8_t>((fi << f.mantissaBits) | (rng() & ((1u << f.mantissaBits) - 1)));
                    if (rng() % 8 == 0) c = 0;
                    if (rng() % 2) c |= 0x80;
                  }
                  codes[static_cast<size_t>(r * cols + j * 32 + i)] = c;
                }
              }
            }
            values.resize(codes.size());
            for (size_t i = 0; i < codes.size(); i++) values[i] = decodeElement(codes[i], f);
          };
          std::vector<uint8_t> ac, bc;
          std::vector<float> av, bv;
          operand(m, ac, av);
          operand(n, bc, bv);
          std::vector<float> as(static_cast<size_t>(m * units)), bs(static_cast<size_t>(n * units)), bias(static_cast<size_t>(n));
          for (float& x : as) x = std::ldexp(1.0f, static_cast<int>(rng() % 20) - 10);
          for (float& x : bs) x = rng() % 5 ? std::ldexp(1.0f, static_cast<int>(rng() % 20) - 10) : static_cast<float>(rng() % 1000) / 777.0f;
          for (float& x : bias) x = static_cast<float>(static_cast<int>(rng() % 200) - 100) / 7.0f;
          DecodedOperand a{av.data(), as.data(), m, k, cols, 32, units};
          DecodedOperand b{bv.data(), bs.data(), n, k, cols, 32, units};
          a.codes = ac.data();
          b.codes = bc.data();
          a.codeElement = b.codeElement = element;
          const std::string what = std::string("aligned from ") + (element == kE4m3 ? "E4M3" : "E5M2") + " codes m=" + std::to_string(m) +
                                   " n=" + std::to_string(n) + " units=" + std::to_string(units);
          check(alignedCodesFor(a, 32) == &alignedCodesAvx512Vbmi && alignedCodesFor(a, 16) == nullptr, what + ": the codes path is chosen for units of 32 only");
          AlignedRows fromValues, fromCodes;
          alignRowsInit(fromValues, m, units, 32);
          alignRows(a, 32, 0, m, fromValues);
          alignRowsInit(fromCodes, m, units, 32);
          alignedCodesAvx512Vbmi.rows(a, 0, m, fromCodes);
          check(fromCodes.pairs == fromValues.pairs && fromCodes.spans == fromValues.spans && fromCodes.exps == fromValues.exps, what + ": rows from codes vs from values");
          for (int32_t span : fromValues.spans) {
            units16++;
            (span == kUnaligned ? wideUnits : shortUnits)++;
          }
          for (uint8_t c : ac) specialUnits += !std::isfinite(decodeElement(c, f));
          for (int64_t col0 = 0; col0 < n; col0 += 32) {
            AlignedPanel pv, pc;
            const int64_t panelCols = std::min<int64_t>(32, n - col0);
            fillAlignedPanel(b, 32, col0, panelCols, 32, pv);
            preparePanel(pc, units, 32, 32);
            for (int64_t j0 = 0; j0 < units; j0 += 3) alignedCodesAvx512Vbmi.panel(b, col0, panelCols, j0, std::min<int64_t>(units, j0 + 3), pc);
            check(pc.pairs == pv.pairs && pc.exps == pv.exps && pc.spans == pv.spans && pc.scales == pv.scales && pc.laneFactors == pv.laneFactors &&
                      pc.maxSpan == pv.maxSpan && pc.minExp == pv.minExp && pc.maxExp == pv.maxExp && pc.powerUnit == pv.powerUnit &&
                      pc.minScaleExp == pv.minScaleExp && pc.maxScaleExp == pv.maxScaleExp,
                  what + ": panel from codes vs from values, col0=" + std::to_string(col0));
          }
          std::vector<float> ref(static_cast<size_t>(m * n)), got(ref.size());
          matmulDecodedScalar(a, b, bias.data(), ref.data(), 0, n);
          splitWideRowUnits(a, fromCodes);
          summarizeRowBlocksShared(a, fromCodes, kAlignedAvx512Rows);
          matmulAlignedAvx512(a, fromCodes, b, bias.data(), got.data(), 0, n / 2);
          matmulAlignedAvx512(a, fromCodes, b, bias.data(), got.data(), n / 2, n);
          check(sameOutputs(got, ref), what + ": avx512-vnni with codes vs the defined order");
        }
      }
    }
  }
  check(shortUnits > 1000 && wideUnits > 100 && specialUnits > 100, "aligned from codes: short, wide and NaN/Inf row-units all exercised");
  std::printf("aligned from codes: %d row-units of a (%d with a form, %d without), %d NaN/Inf codes\n", units16, shortUnits, wideUnits, specialUnits);
#endif
}

// An exception thrown in any range of parallelFor (a worker's or the caller's) reaches the caller
// after every range has finished, and the pool runs the next job in full (a worker that let an
// exception escape would std::terminate the process).
void checkThreadPoolExceptions() {
  std::vector<int> seen(4096);
  for (const int64_t thrower : {int64_t(0), int64_t(4095), int64_t(2048)}) {
    std::fill(seen.begin(), seen.end(), 0);
    bool caught = false;
    try {
      parallelFor(4096, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++) seen[static_cast<size_t>(i)] = 1;
        if (b <= thrower && thrower < e) throw std::runtime_error("range fault");
      });
    } catch (const std::runtime_error& err) {
      caught = std::string(err.what()) == "range fault";
    }
    check(caught, "thread pool: the exception of the range holding item " + std::to_string(thrower) + " reaches the caller");
    check(std::count(seen.begin(), seen.end(), 1) == 4096, "thread pool: every range ran to its end before the rethrow");
  }
  std::vector<int> after(4096, 0);
  parallelFor(4096, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) after[static_cast<size_t>(i)] = 1;
  });
  check(std::count(after.begin(), after.end(), 1) == 4096, "thread pool: the next job runs every range");
  std::printf("thread pool: exceptions of %d threads' ranges reach the caller\n", threadCount());
}

int main() {
  setenv("FP4KIT_THREADS", "4", 0);  // workers exist even on a one-core machine (read once, before any kernel runs)
  std::vector<const QuantizeKernels*> tables;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) tables.push_back(&kAvx2Kernels);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) tables.push_back(&kAvx512Kernels);
#elif defined(__aarch64__)
  tables.push_back(&kNeonKernels);
#endif
  for (const QuantizeKernels* t : tables) {
    compareTables(*t);
    std::printf("%s: compared with the scalar kernels\n", t->simd);
    compareFgmp(*t);
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) compareBitplaneRows("avx2", bitplaneRowsAvx2);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq")) compareBitplaneRows("avx512-vpopcntdq", bitplaneRowsAvx512);
#elif defined(__aarch64__)
  compareBitplaneRows("neon", bitplaneRowsNeon);
#endif
  checkFp4Tiles();
  checkPlanes();
  std::printf("byte-plane matmul: scalar against the defined order, AVX-512 VNNI (planes, and from codes with VBMI), NEON dot product (planes), AVX2 and NEON (int16 planes) against scalar\n");
  checkAligned();
  checkAlignedCodes();
  checkBitplaneProduct();
  checkThreadPoolExceptions();
  std::printf("bit-plane rows compared with the scalar kernel; product (%s) with an integer GEMM\n", activeBitplaneKernel().simd);
  std::printf("%d failures\n", failures);
  return failures == 0 && !tables.empty() ? 0 : 1;
}
