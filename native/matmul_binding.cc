// N-API glue for the block matmul. Repacked weights are a JS External holding a shared reference
// to them: `releaseFp4Weights` frees them at once (the facade calls it when a call or a prepared
// handle is done with them), a job running on them keeps them alive until it ends, and the
// External's finaliser frees whatever was never released. Calls check every size in C++ before
// touching memory; large products run on the addon's worker threads, synchronously or as a
// Promise (whose activations, bias and output belong to the job: job_buffers.h), with the same
// bits either way because every output column is computed by exactly one thread.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "element_codec.h"
#include "formats.h"
#include "matmul.h"
#include "matmul_aligned.h"
#include "matmul_binding.h"
#include "matmul_planes.h"
#include "napi_args.h"
#include "napi_promise.h"
#include "threads.h"

namespace fp4kit {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;
// From this many activation rows on, weights that have byte planes as well (FGMP) run on them
// rather than on their FP4 tiles with sparse FP8 slots (one thread, K = N = 4096, GFLOP/s planes
// against tiles): 32 with AVX-512's byte planes; 16 where the planes are rebuilt from codes
// (AVX-512 VBMI: 16 rows 131–142 against 99–107, 12 rows 103–110 against 112–129); 8 there since
// the planes' rows past their last whole step of 8 run as one step (best of 15 in one process:
// 8 rows 184 against 159, 10 rows 185 / 151, 12 rows 201 / 160, 14 rows 212 / 156; 4–6 rows, all
// one-row steps on the planes, 67–74 against 140–153); 2 with AVX2's int16 planes (2 rows 29
// against 20, 16 rows 73 against 35); 1 with AVX2's compact form, which rebuilds h from a byte
// (one row, median ms of 4096², one thread, alternating builds: 1.69–1.79 against the tiles'
// 2.57–2.61; 2026-12-07, both cores shared).
constexpr int64_t kPlanesMinRows = 32;
constexpr int64_t kCodesPlanesMinRows = 8;
constexpr int64_t kInt16PlanesMinRows = 2;
int64_t planesMinRows(const PackedPlaneWeights& planes) {
  if (!planes.hCodes.empty()) return 1;
  return !planes.h16.empty() ? kInt16PlanesMinRows : !planes.codes.empty() ? kCodesPlanesMinRows : kPlanesMinRows;
}
// Planes from codes also win at 1–3 rows: the FP4 tiles' steps take 4 rows, so below that each row
// streams the weights (and their FP8 slots) alone, where a codes step rebuilds the planes once for
// its rows (1 thread, K = N = 4096, GFLOP/s codes against tiles: 2 rows 81 / 57, 3 rows 107 / 50–69;
// 4–12 rows the tiles, 151–165 / 71–146). One row was level (41–45 / 45–47) until the codes
// kernel's one-row step took four tiles (2026-12-04); since, 63–78 against 52–59 (2026-12-05, three
// alternating runs). Without VBMI the planes lose at one row (AVX-512 byte planes 18–34 against
// 52–55, AVX2 int16 planes 11–13 against 10–18).
// Where the FP4 kernel has no form of FGMP's FP8 slots (NEON: it hands them to the scalar
// kernel), the planes take every row count.
bool runsOnPlanes(const PackedPlaneWeights& planes, int64_t m) {
  if (!activeMatmulKernel().readsFp8Slots) return true;
  return (!planes.codes.empty() && m <= 3) || m >= planesMinRows(planes);
}

// What the JS External holds: the weights until released (FP4 tiles, or byte planes:
// matmul_planes.h), and their size for V8's accounting.
struct WeightsHandle {
  std::shared_ptr<const PackedFp4Weights> weights;
  std::shared_ptr<const PackedPlaneWeights> planes;
  int64_t bytes = 0;
  bool live() const { return weights != nullptr || planes != nullptr; }
};

// Marks fp4kit's weight handles: another addon's napi_external is an External too, and reading its
// data as a WeightsHandle would follow foreign pointers.
constexpr napi_type_tag kWeightsTag = {0x6670346b69745767ULL, 0x7473486e646c6531ULL};

Napi::Value weightsExternal(Napi::Env env, WeightsHandle* handle) {
  Napi::MemoryManagement::AdjustExternalMemory(env, handle->bytes);
  Napi::External<WeightsHandle> external = Napi::External<WeightsHandle>::New(env, handle, [](Napi::Env e, WeightsHandle* h) {
    if (h->live()) Napi::MemoryManagement::AdjustExternalMemory(e, -h->bytes);
    delete h;
  });
  external.TypeTag(&kWeightsTag);
  return external;
}

WeightsHandle* weightsHandleArg(const Napi::Env& env, const Napi::Value& v, const char* fn) {
  if (!v.IsExternal() || !v.As<Napi::External<WeightsHandle>>().CheckTypeTag(&kWeightsTag))
    throw Napi::TypeError::New(env, std::string(fn) + ": weights must come from repackFp4Weights or repackPlaneWeights");
  WeightsHandle* h = v.As<Napi::External<WeightsHandle>>().Data();
  if (h == nullptr) throw Napi::TypeError::New(env, std::string(fn) + ": weights must come from repackFp4Weights or repackPlaneWeights");
  return h;
}

// repackFp4Weights(nibbles u8, blockScales f32, fp8Blocks u8|null, fp8Codes u8|null, n, k, blockSize
//                  [, scaleCodes u8|null, scaleCoding 0|1|2, tensorScale]) → External
// The optional codes let kernels that decode them store the scales compactly (matmul.h).
Napi::Value RepackFp4Weights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7) throw Napi::TypeError::New(env, "repackFp4Weights: expected 7 arguments");
  const int64_t n = integerArg(env, info[4], "n", 0, kMaxDim);
  const int64_t k = integerArg(env, info[5], "k", 1, kMaxDim);
  const int64_t blockSize = integerArg(env, info[6], "blockSize", 16, 32);
  if (blockSize != 16 && blockSize != 32) throw Napi::RangeError::New(env, "blockSize must be 16 or 32");
  const int64_t blocksPerRow = (k + blockSize - 1) / blockSize;
  const int64_t paddedK = blocksPerRow * blockSize;
  const uint8_t* nibbles = typedData<uint8_t>(env, info[0], "nibbles", static_cast<size_t>(n * paddedK / 2));
  const float* scales = typedData<float>(env, info[1], "blockScales", static_cast<size_t>(n * blocksPerRow));
  const uint8_t* fp8Blocks = typedData<uint8_t>(env, info[2], "fp8Blocks", static_cast<size_t>(n * blocksPerRow), true);
  const uint8_t* fp8Codes = typedData<uint8_t>(env, info[3], "fp8Codes", static_cast<size_t>(n * paddedK), true);
  if ((fp8Blocks == nullptr) != (fp8Codes == nullptr)) throw Napi::TypeError::New(env, "fp8Blocks and fp8Codes go together");
  if (fp8Blocks && blockSize != 16) throw Napi::RangeError::New(env, "FGMP weights have blocks of 16");
  ScaleCodes codes;
  if (info.Length() > 7) {
    codes.codes = typedData<uint8_t>(env, info[7], "scaleCodes", static_cast<size_t>(n * blocksPerRow), true);
    if (info.Length() > 8 && !info[8].IsUndefined()) codes.coding = static_cast<int>(integerArg(env, info[8], "scaleCoding", 0, 2));
    if (info.Length() > 9 && !info[9].IsUndefined()) {
      if (!info[9].IsNumber()) throw Napi::TypeError::New(env, "tensorScale must be a number");
      codes.tensorScale = info[9].As<Napi::Number>().DoubleValue();
    }
    codes.compactAllowed = activeMatmulKernel().readsCompactScales;
  }
  auto packed = std::make_shared<PackedFp4Weights>();
  repackFp4Weights(nibbles, scales, fp8Blocks, fp8Codes, n, k, blockSize, *packed, codes);
  auto* handle = new WeightsHandle();
  handle->bytes = static_cast<int64_t>(packed->nibbles.size() + packed->scales.size() * 4 + packed->compactScales.size() +
                                       packed->fp8Planes.size() + packed->fp8Lanes.size() * 2 + packed->fp8Place.size() * 8);
  handle->weights = std::move(packed);
  return weightsExternal(env, handle);
}

// repackPlaneWeights(codes u8 [n][paddedK], valueTable i32[256], shift, blockScales f32 [n][paddedK/blockSize],
//                    n, k [, blockSize 16|32 = 32, into External|undefined, fgmpMultipliers f32[2]]) → External
// MX weights with integer element values as byte planes (matmul_planes.h). With `into` (FP4 weights
// of the same n, k from repackFp4Weights: FGMP) the planes are added to that handle, which then
// runs products of many rows on them and of few rows on its FP4 tiles. The form (byte or int16
// planes) is the one the active planes kernel reads.
Napi::Value RepackPlaneWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "repackPlaneWeights: expected 6 arguments");
  const int64_t n = integerArg(env, info[4], "n", 0, kMaxDim);
  const int64_t k = integerArg(env, info[5], "k", 1, kMaxDim);
  const int shift = static_cast<int>(integerArg(env, info[2], "shift", 0, 24));
  const int64_t blockSize = info.Length() > 6 && !info[6].IsUndefined() ? integerArg(env, info[6], "blockSize", 16, 32) : 32;
  if (blockSize != 16 && blockSize != 32) throw Napi::RangeError::New(env, "blockSize must be 16 or 32");
  WeightsHandle* into = nullptr;
  if (info.Length() > 7 && !info[7].IsUndefined() && !info[7].IsNull()) {
    into = weightsHandleArg(env, info[7], "repackPlaneWeights");
    if (!into->weights || into->planes) throw Napi::TypeError::New(env, "repackPlaneWeights: `into` must be live FP4 weights without planes");
    if (into->weights->n != n || into->weights->k != k) throw Napi::RangeError::New(env, "repackPlaneWeights: `into` has another shape");
  }
  const int64_t units = (k + blockSize - 1) / blockSize;
  const uint8_t* codes = typedData<uint8_t>(env, info[0], "codes", static_cast<size_t>(n * units * blockSize));
  // The table is checked here and read again by the repack: the same entries both times.
  std::vector<int32_t> tableCopy;
  const int32_t* table = stableElements(checkedView(env, info[1], "valueTable", 4, napi_int32_array, "Int32Array", 256), 256, tableCopy);
  // A unit's dot (blockSize int8 activations, |a| ≤ 128, times v) is taken in int32: |v| < 2^31 / (128 · blockSize).
  const int32_t bound = static_cast<int32_t>((int64_t(1) << 24) / blockSize);
  for (int c = 0; c < 256; c++) {
    const int32_t v = table[c];
    if (v != kPlaneNanValue && (v <= -bound || v >= bound)) {
      throw Napi::RangeError::New(env, std::string("repackPlaneWeights: valueTable entries must lie in (-2^") + (blockSize == 32 ? "19" : "20") + ", 2^" +
                                           (blockSize == 32 ? "19" : "20") + ") for blocks of " + std::to_string(blockSize) + " (a unit's dot is an int32)");
    }
  }
  const float* scales = typedData<float>(env, info[3], "blockScales", static_cast<size_t>(n * units));
  // FGMP's two multipliers (FgmpMultipliers), which let the codes form keep one byte per lane
  // multiplier; a wrong pair only leaves them floats (every byte is checked against blockScales).
  FgmpMultipliers fgmp;
  const bool withFgmp = info.Length() > 8 && !info[8].IsUndefined() && !info[8].IsNull();
  if (withFgmp) {
    const float* pair = typedData<float>(env, info[8], "fgmpMultipliers", 2);
    fgmp = {pair[0], pair[1]};
  }
  auto packed = std::make_shared<PackedPlaneWeights>();
  repackPlaneWeights(codes, table, shift, scales, n, k, blockSize, *packed, activePlaneForm(), withFgmp ? &fgmp : nullptr);
  const int64_t bytes = static_cast<int64_t>(packed->planes.size() + packed->low.size() + 2 * (packed->h16.size() + packed->low16.size()) +
                                             packed->hCodes.size() + packed->hCodesLow.size() +
                                             packed->lowQuads.size() + packed->codes.size() + packed->scales.size() * 4 +
                                             packed->compactScales.size());
  if (into != nullptr) {
    into->planes = std::move(packed);
    into->bytes += bytes;
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
    return info[7];
  }
  auto* handle = new WeightsHandle();
  handle->bytes = bytes;
  handle->planes = std::move(packed);
  return weightsExternal(env, handle);
}

// releaseFp4Weights(weights): frees them now, or when the last job running on them ends. Later
// calls with these weights throw. Releasing twice is harmless.
Napi::Value ReleaseFp4Weights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw Napi::TypeError::New(env, "releaseFp4Weights: expected 1 argument");
  WeightsHandle* h = weightsHandleArg(env, info[0], "releaseFp4Weights");
  if (h->live()) {
    h->weights.reset();
    h->planes.reset();
    Napi::MemoryManagement::AdjustExternalMemory(env, -h->bytes);
  }
  return env.Undefined();
}

// Every NaN of a product written as the quiet NaN 0x7fc00000 (README.md, "Block matmul"; CPUs
// differ in the NaNs they make): columns [c0, c1) of every row, by the thread that wrote them,
// while they are in its cache. The facade skips its own pass for these kernels (nansCanonical).
void canonicalNaNs(float* out, int64_t rows, int64_t n, int64_t c0, int64_t c1) {
  for (int64_t r = 0; r < rows; r++) {
    float* row = out + r * n;
    for (int64_t c = c0; c < c1; c++) {
      uint32_t bits;
      std::memcpy(&bits, row + c, 4);
      bits = (bits & 0x7fffffffu) > 0x7f800000u ? 0x7fc00000u : bits;
      std::memcpy(row + c, &bits, 4);
    }
  }
}

// Tiles [0, w.tiles) over the worker threads, enough per thread that starting one pays off (~2M
// multiply-adds); each range's output columns made NaN-canonical by the thread that wrote them.
template <class Weights, class Kernel>
void runTiles(const Int8Activations& a, const Weights& w, Kernel kernel, const float* bias, float* out) {
  const int64_t macsPerTile = std::max<int64_t>(1, a.rows * w.k * kTileColumns);
  parallelFor(w.tiles, std::max<int64_t>(1, (int64_t(1) << 21) / macsPerTile), [&](int64_t begin, int64_t end) {
    kernel(a, w, bias, out, begin, end);
    canonicalNaNs(out, a.rows, w.n, begin * kTileColumns, std::min(end * kTileColumns, w.n));
  });
}

struct Fp4Int8Call {
  Int8Activations a;
  std::shared_ptr<const PackedFp4Weights> b;  // alive until the call (or job) ends
  std::shared_ptr<const PackedPlaneWeights> planes;  // instead of b, for byte-plane weights
  const float* bias = nullptr;
  float* out = nullptr;
  void run() {
    if (a.rows == 0) return;  // nothing to write (and a zero-length array's data may be null)
    // The AVX-512 kernels' row layout, made once for all threads (matmul.h, RowBlocks); kept per
    // calling thread between calls (a fresh buffer costs a page fault per 4 KiB).
    static thread_local RowBlocks kept;
    const bool share = activeKernelsReadRowBlocks() && a.rows > 0;
    if (planes) {
      if (share) layoutRowBlocksShared(a, planes->offset(), 0, matmulPlanesStepRows(*planes), kept);
      a.rowBlocks = share ? &kept : nullptr;
      // Split weights in the codes form (PlaneForm::Codes) run on the kernel that rebuilds their planes.
      const PlanesKernel fromCodes = activePlanesFromCodesKernel();
      const PlanesKernel kernel = fromCodes && !planes->codes.empty() ? fromCodes : activePlanesKernel();
      runTiles(a, *planes, kernel, bias, out);
    } else {
      if (share) layoutRowBlocksShared(a, kAvx512Fp4StartFactor, b->hasFp8 ? kFp8Bias : 0, avx512Fp4LayoutRows(a.rows), kept);
      a.rowBlocks = share ? &kept : nullptr;
      runTiles(a, *b, activeMatmulKernel().fp4Int8, bias, out);
    }
    a.rowBlocks = nullptr;
    if (kept.codes.capacity() * sizeof(int32_t) > kKeptBytes) kept = RowBlocks();  // a rare huge call keeps nothing
  }
};

// Shared argument parsing: (packed External, aCodes i8/u8, aScales f32, m, bias f32|null, out f32)
Fp4Int8Call parseFp4Int8(const Napi::CallbackInfo& info, JobBuffers* job) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "matmulFp4Int8: expected 6 arguments");
  ArgumentLog arrays;  // the caller's own arrays: checkedView logs each before a job snapshots or stages it
  Fp4Int8Call call;
  const WeightsHandle* handle = weightsHandleArg(env, info[0], "matmulFp4Int8");
  if (!handle->live()) throw Napi::TypeError::New(env, "matmulFp4Int8: these weights were released");
  const int64_t m = integerArg(env, info[3], "m", 0, kMaxDim);
  // Weights with both forms (FGMP): the planes for many rows, the FP4 tiles and their sparse FP8
  // slots for few (same bits either way: the dot products are exact).
  if (handle->planes && (!handle->weights || runsOnPlanes(*handle->planes, m))) call.planes = handle->planes;
  else call.b = handle->weights;
  const int64_t n = call.b ? call.b->n : call.planes->n;
  const int64_t k = call.b ? call.b->k : call.planes->k;
  const int64_t paddedK = (k + 31) / 32 * 32;
  call.a.codes = inputData<int8_t>(env, info[1], "activation codes", static_cast<size_t>(m * paddedK), job);
  call.a.blockScales = inputData<float>(env, info[2], "activation scales", static_cast<size_t>(m * paddedK / 32), job);
  call.a.rows = m;
  call.a.paddedK = paddedK;
  call.bias = inputData<float>(env, info[4], "bias", static_cast<size_t>(n), job, true);
  call.out = outputData<float>(env, info[5], "out", static_cast<size_t>(m * n), job);
  arrays.requireOutputsDisjoint(env, "matmulFp4Int8", {"out"});
  if (call.b) prepareInt8Activations(call.a, *call.b);
  else prepareInt8ActivationsForPlanes(call.a, *call.planes);
  return call;
}

Napi::Value MatmulFp4Int8(const Napi::CallbackInfo& info) {
  Fp4Int8Call call = parseFp4Int8(info, nullptr);
  call.run();
  return info.Env().Undefined();
}

// The Promise variant: the product runs off the JS thread.
Napi::Value MatmulFp4Int8Async(const Napi::CallbackInfo& info) {
  return PromiseWorker<Fp4Int8Call>::Start(info, parseFp4Int8);
}

// The optional codes of a decoded operand (arguments codes, element): the FP8 codes its values were
// decoded from (rows × paddedCols bytes, E4M3 or E5M2), or null and −1.
static void readOperandCodes(const Napi::Env& env, const Napi::CallbackInfo& info, size_t at, const char* name, DecodedOperand& x) {
  if (info.Length() <= at || info[at].IsNull() || info[at].IsUndefined()) return;
  const int64_t element = integerArg(env, info.Length() > at + 1 ? info[at + 1] : env.Undefined(), (std::string(name) + " element").c_str(), kE4m3, kE5m2);
  x.codes = typedArrayOf<uint8_t>(env, info[at], name, napi_uint8_array, "Uint8Array", static_cast<size_t>(x.rows * x.paddedCols));
  x.codeElement = static_cast<int32_t>(element);
}

// Codes given beside values must be the values' codes: the aligned AVX-512 VBMI path reads them
// instead of the values (one byte an element instead of four), so codes of other values would make
// the product depend on the CPU. Checking every element would read the values the codes exist to
// skip (1.2–1.8× slower gradient products, measured), and even every row's first elements cost
// 16–20 % at 4096 rows of 512 (a cache miss a row), so the first 16 elements of at most 64 rows
// spread over the operand are compared (bit for bit; any NaN for a NaN code): a wrong element
// format or stale codes are refused on every CPU; a mismatch elsewhere is not detected.
static void checkOperandCodes(const Napi::Env& env, const DecodedOperand& x, const char* codesName, const char* valuesName) {
  if (x.codes == nullptr || x.rows == 0 || x.paddedCols == 0) return;
  uint32_t table[256];
  for (uint32_t c = 0; c < 256; c++) table[c] = floatToBits(decodeElement(c, kElementFormats[x.codeElement]));
  const int64_t step = std::max<int64_t>(1, x.rows / 64), edge = std::min<int64_t>(16, x.paddedCols);
  for (int64_t r = 0;; r = std::min(r + step, x.rows - 1)) {  // rows 0, step, 2·step, …, and the last
    for (int64_t i = r * x.paddedCols; i < r * x.paddedCols + edge; i++) {
      const uint32_t want = table[x.codes[i]];
      if (want != floatToBits(x.values[i]) && !(std::isnan(bitsToFloat(want)) && std::isnan(x.values[i]))) {
        char detail[160];
        std::snprintf(detail, sizeof detail, "[%lld] = 0x%02x is not the code of %s[%lld] = %.9g", static_cast<long long>(i), x.codes[i], valuesName,
                      static_cast<long long>(i), static_cast<double>(x.values[i]));
        throw Napi::RangeError::New(env, std::string("matmulDecoded: ") + codesName + detail);
      }
    }
    if (r == x.rows - 1) break;
  }
}

// matmulDecoded(aValues f32, aScales f32, m, aBlock, bValues f32, bScales f32, n, bBlock, k, bias|null, out
//               [, aCodes u8|null, aElement, bCodes u8|null, bElement])
// → the path that ran: "aligned" (matmul_aligned.h) or "float64" (matmulDecoded*); same bits, every
// NaN canonical (nansCanonical) like the tile kernels' outputs. The codes, where given, must be
// those the values were decoded from: the aligned kernels may read either.
Napi::Value MatmulDecoded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 11) throw Napi::TypeError::New(env, "matmulDecoded: expected 11 arguments");
  ArgumentLog arrays;
  const int64_t m = integerArg(env, info[2], "m", 0, kMaxDim);
  const int64_t aBlock = integerArg(env, info[3], "aBlock", 16, 32);
  const int64_t n = integerArg(env, info[6], "n", 0, kMaxDim);
  const int64_t bBlock = integerArg(env, info[7], "bBlock", 16, 32);
  const int64_t k = integerArg(env, info[8], "k", 1, kMaxDim);
  if ((aBlock != 16 && aBlock != 32) || (bBlock != 16 && bBlock != 32)) throw Napi::RangeError::New(env, "block sizes must be 16 or 32");
  const int64_t aBlocks = (k + aBlock - 1) / aBlock, bBlocks = (k + bBlock - 1) / bBlock;
  DecodedOperand a{typedData<float>(env, info[0], "a values", static_cast<size_t>(m * aBlocks * aBlock)),
                   typedData<float>(env, info[1], "a scales", static_cast<size_t>(m * aBlocks)), m, k, aBlocks * aBlock, aBlock, aBlocks};
  DecodedOperand b{typedData<float>(env, info[4], "b values", static_cast<size_t>(n * bBlocks * bBlock)),
                   typedData<float>(env, info[5], "b scales", static_cast<size_t>(n * bBlocks)), n, k, bBlocks * bBlock, bBlock, bBlocks};
  const float* bias = typedData<float>(env, info[9], "bias", static_cast<size_t>(n), true);
  float* out = typedData<float>(env, info[10], "out", static_cast<size_t>(m * n));
  readOperandCodes(env, info, 11, "aCodes", a);
  readOperandCodes(env, info, 13, "bCodes", b);
  arrays.requireOutputsDisjoint(env, "matmulDecoded", {"out"});
  checkOperandCodes(env, a, "aCodes", "a values");
  checkOperandCodes(env, b, "bCodes", "b values");
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, m * k));
  // Kept between calls (one per JavaScript thread; the pool's threads only read it): a fresh
  // buffer costs a page fault per 4 KiB.
  thread_local AlignedRows kept;
  thread_local std::vector<float> keptTransposed;
  // References, captured by the lambdas: inside them, the name of a thread_local would be the pool
  // thread's own (empty) instance.
  AlignedRows& aligned = kept;
  std::vector<float>& transposed = keptTransposed;
  const AlignedPlan plan = planAligned(a, b, aligned);
  if (plan != AlignedPlan::None) {
    const AlignedKernel kernel = activeAlignedKernel();
    if (plan == AlignedPlan::Direct) {
      parallelFor(n, grain, [&](int64_t begin, int64_t end) {
        kernel(a, aligned, b, bias, out, begin, end);
        canonicalNaNs(out, m, n, begin, end);
      });
    } else {
      // b · aᵀ, then its transpose with the bias added as the reference adds it (f32(acc + bias[n])).
      transposed.resize(static_cast<size_t>(m * n));
      float* t = transposed.data();
      parallelFor(m, std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, n * k)),
                  [&](int64_t begin, int64_t end) { kernel(b, aligned, a, nullptr, t, begin, end); });
      for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) out[i * n + j] = bias ? t[j * m + i] + bias[j] : t[j * m + i];
      canonicalNaNs(out, m, n, 0, n);
      if (transposed.capacity() * sizeof(float) > kKeptBytes) std::vector<float>().swap(transposed);
    }
    releaseIfLarge(aligned);
    return Napi::String::New(env, "aligned");
  }
  parallelFor(n, grain, [&](int64_t begin, int64_t end) {
    activeMatmulKernel().decoded(a, b, bias, out, begin, end);
    canonicalNaNs(out, m, n, begin, end);
  });
  return Napi::String::New(env, "float64");
}

// a · b · c, or a RangeError naming `what` when it does not fit int64 (hostile sizes).
int64_t batchSize(const Napi::Env& env, int64_t a, int64_t b, int64_t c, const char* what) {
  const std::string message = std::string("matmulDecodedBatch: ") + what + " is too large";
  return checkedProduct(env, checkedProduct(env, a, b, message), c, message);
}

// matmulDecodedBatch(aValues f32, aScales f32, m, aBlock, aMatrices, bValues f32, bScales f32, n, bBlock, bMatrices, k,
//                    bias|null, out, aIndex i32, bIndex i32) → "float64"
// Many products in one call (the tfjs backend's batched float products: attention's per-head
// matrices): a holds aMatrices matrices of m rows one after the other, b bMatrices of n rows, and
// output matrix i (m × n, at i·m·n) = a's matrix aIndex[i] · (b's matrix bIndex[i])ᵀ (+ bias), each
// exactly as matmulDecoded computes it — on the float64 loop, whose bits the aligned path shares —
// the matrices spread over the pool's threads (one thread each: the same bits on any count).
Napi::Value MatmulDecodedBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 15) throw Napi::TypeError::New(env, "matmulDecodedBatch: expected 15 arguments");
  const int64_t m = integerArg(env, info[2], "m", 0, kMaxDim);
  const int64_t aBlock = integerArg(env, info[3], "aBlock", 16, 32);
  const int64_t aMatrices = integerArg(env, info[4], "aMatrices", 0, kMaxDim);
  const int64_t n = integerArg(env, info[7], "n", 0, kMaxDim);
  const int64_t bBlock = integerArg(env, info[8], "bBlock", 16, 32);
  const int64_t bMatrices = integerArg(env, info[9], "bMatrices", 0, kMaxDim);
  const int64_t k = integerArg(env, info[10], "k", 1, kMaxDim);
  if ((aBlock != 16 && aBlock != 32) || (bBlock != 16 && bBlock != 32)) throw Napi::RangeError::New(env, "block sizes must be 16 or 32");
  const int64_t aBlocks = (k + aBlock - 1) / aBlock, bBlocks = (k + bBlock - 1) / bBlock;
  const float* aValues = typedData<float>(env, info[0], "a values", static_cast<size_t>(batchSize(env, aMatrices, m, aBlocks * aBlock, "a")));
  const float* aScales = typedData<float>(env, info[1], "a scales", static_cast<size_t>(batchSize(env, aMatrices, m, aBlocks, "a")));
  const float* bValues = typedData<float>(env, info[5], "b values", static_cast<size_t>(batchSize(env, bMatrices, n, bBlocks * bBlock, "b")));
  const float* bScales = typedData<float>(env, info[6], "b scales", static_cast<size_t>(batchSize(env, bMatrices, n, bBlocks, "b")));
  const float* bias = typedData<float>(env, info[11], "bias", static_cast<size_t>(n), true);
  const ArrayView aIndexView = checkedView(env, info[13], "aIndex", 4, napi_int32_array, "Int32Array", 0);
  const size_t batch = info[13].As<Napi::TypedArray>().ElementLength();  // an Int32Array: checked above
  if (batch > static_cast<size_t>(kMaxDim)) throw Napi::RangeError::New(env, "matmulDecodedBatch: aIndex is too long");
  const ArrayView bIndexView = checkedView(env, info[14], "bIndex", 4, napi_int32_array, "Int32Array", batch);
  const int32_t* aIndexArg = reinterpret_cast<const int32_t*>(aIndexView.data);
  const int32_t* bIndexArg = reinterpret_cast<const int32_t*>(bIndexView.data);
  const size_t outCount = static_cast<size_t>(batchSize(env, static_cast<int64_t>(batch), m, n, "out"));
  float* out = typedData<float>(env, info[12], "out", outCount);
  // out must not share memory with an input: the products would read what earlier ones wrote (an
  // index overwritten by a result points anywhere).
  const struct { const void* p; size_t bytes; } inputs[] = {
      {aValues, static_cast<size_t>(aMatrices * m * aBlocks * aBlock) * 4}, {aScales, static_cast<size_t>(aMatrices * m * aBlocks) * 4},
      {bValues, static_cast<size_t>(bMatrices * n * bBlocks * bBlock) * 4}, {bScales, static_cast<size_t>(bMatrices * n * bBlocks) * 4},
      {bias, bias ? static_cast<size_t>(n) * 4 : 0}, {aIndexArg, batch * 4}, {bIndexArg, batch * 4}};
  for (const auto& in : inputs) {
    if (bytesOverlap(out, outCount * 4, in.p, in.bytes)) throw Napi::RangeError::New(env, "matmulDecodedBatch: out shares memory with an input");
  }
  // The indices are checked here and read again by the products: the same indices both times.
  std::vector<int32_t> aIndexCopy, bIndexCopy;
  const int32_t* aIndex = stableElements(aIndexView, batch, aIndexCopy);
  const int32_t* bIndex = stableElements(bIndexView, batch, bIndexCopy);
  for (size_t i = 0; i < batch; i++) {
    if (aIndex[i] < 0 || aIndex[i] >= aMatrices) throw Napi::RangeError::New(env, "matmulDecodedBatch: aIndex[" + std::to_string(i) + "] is not a matrix of a");
    if (bIndex[i] < 0 || bIndex[i] >= bMatrices) throw Napi::RangeError::New(env, "matmulDecodedBatch: bIndex[" + std::to_string(i) + "] is not a matrix of b");
  }
  if (m == 0 || n == 0 || batch == 0) return Napi::String::New(env, "float64");  // an empty output: nothing to compute
  const auto kernel = activeMatmulKernel().decoded;
  // Work per matrix, saturated (each factor is at most 2^31: the product can pass int64).
  int64_t work = 0;
  if (__builtin_mul_overflow(m, n, &work) || __builtin_mul_overflow(work, k, &work)) work = INT64_MAX;
  parallelFor(static_cast<int64_t>(batch), std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, work)), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const int64_t ia = aIndex[static_cast<size_t>(i)], ib = bIndex[static_cast<size_t>(i)];
      const DecodedOperand a{aValues + ia * m * aBlocks * aBlock, aScales + ia * m * aBlocks, m, k, aBlocks * aBlock, aBlock, aBlocks};
      const DecodedOperand b{bValues + ib * n * bBlocks * bBlock, bScales + ib * n * bBlocks, n, k, bBlocks * bBlock, bBlock, bBlocks};
      float* o = out + i * m * n;
      kernel(a, b, bias, o, 0, n);
      canonicalNaNs(o, m, n, 0, n);
    }
  });
  return Napi::String::New(env, "float64");
}

}  // namespace

void registerMatmul(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "repackFp4Weights", RepackFp4Weights);
  exportFunction(env, exports, "repackPlaneWeights", RepackPlaneWeights);
  exportFunction(env, exports, "releaseFp4Weights", ReleaseFp4Weights);
  exportFunction(env, exports, "matmulFp4Int8", MatmulFp4Int8);
  exportFunction(env, exports, "matmulFp4Int8Async", MatmulFp4Int8Async);
  exportFunction(env, exports, "matmulDecoded", MatmulDecoded);
  exportFunction(env, exports, "matmulDecodedBatch", MatmulDecodedBatch);
  exports.Set("matmulSimd", Napi::String::New(env, activeMatmulKernel().simd));
  exports.Set("nansCanonical", Napi::Boolean::New(env, true));
}

}  // namespace fp4kit
