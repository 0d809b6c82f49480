// N-API glue of the transpose (transpose.h):
//   transposeMatrices(src, srcOffset, rows, cols, count, dst, dstOffset, dstStride)
// src and dst: typed arrays of 4-byte elements (Float32Array, Int32Array, Uint32Array), offsets in
// elements. Every size is checked here (overflow, lengths, dstStride ≥ rows, src and dst not
// overlapping) before any memory is touched; large transposes run on the addon's threads.
#include <napi.h>

#include <algorithm>
#include <string>

#include "napi_args.h"
#include "quantize.h"
#include "threads.h"
#include "transpose.h"
#include "transpose_binding.h"

namespace fp4kit {
namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;

// A Float32Array, Int32Array or Uint32Array of at least `expected` elements (its length and data
// pointer from N-API); `what` names the argument with its function ("transposeMatrices: src").
ArrayView elements32(const Napi::Env& env, const Napi::Value& v, const std::string& what, size_t expected = 0) {
  if (v.IsTypedArray()) {
    const napi_typedarray_type type = v.As<Napi::TypedArray>().TypedArrayType();
    if (type == napi_float32_array || type == napi_int32_array || type == napi_uint32_array) return checkedView(env, v, what.c_str(), 4, -1, nullptr, expected, "elements");
  }
  throw Napi::TypeError::New(env, what + " must be a Float32Array, Int32Array or Uint32Array");
}

int64_t checkedMul(const Napi::Env& env, int64_t a, int64_t b) {
  return checkedProduct(env, a, b, "transposeMatrices: the matrices are too large", kMaxElements);
}

Napi::Value TransposeMatrices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8) throw Napi::TypeError::New(env, "transposeMatrices: expected 8 arguments");
  // Every number first (a getter cannot run on a number), then the arrays' pointers.
  const int64_t srcOffset = integerArg(env, info[1], "transposeMatrices: srcOffset", 0, kMaxElements);
  const int64_t rows = integerArg(env, info[2], "transposeMatrices: rows", 0, kMaxElements);
  const int64_t cols = integerArg(env, info[3], "transposeMatrices: cols", 0, kMaxElements);
  const int64_t count = integerArg(env, info[4], "transposeMatrices: count", 0, kMaxElements);
  const int64_t dstOffset = integerArg(env, info[6], "transposeMatrices: dstOffset", 0, kMaxElements);
  const int64_t dstStride = integerArg(env, info[7], "transposeMatrices: dstStride", 0, kMaxElements);
  if (dstStride < rows) throw Napi::RangeError::New(env, "transposeMatrices: dstStride must be at least rows");
  const ArrayView src = elements32(env, info[0], "transposeMatrices: src");
  const ArrayView dst = elements32(env, info[5], "transposeMatrices: dst");
  const int64_t matrix = checkedMul(env, rows, cols);
  const int64_t srcNeeded = checkedMul(env, count, matrix) + srcOffset;
  // The last matrix's last output row needs `rows` elements, not a whole stride.
  const int64_t dstNeeded = matrix == 0 || count == 0 ? dstOffset : checkedMul(env, checkedMul(env, count, cols) - 1, dstStride) + rows + dstOffset;
  if (static_cast<uint64_t>(srcNeeded) > (src.bytes / 4)) throw Napi::RangeError::New(env, "transposeMatrices: src holds " + std::to_string((src.bytes / 4)) + " elements, " + std::to_string(srcNeeded) + " needed");
  if (static_cast<uint64_t>(dstNeeded) > (dst.bytes / 4)) throw Napi::RangeError::New(env, "transposeMatrices: dst holds " + std::to_string((dst.bytes / 4)) + " elements, " + std::to_string(dstNeeded) + " needed");
  if (matrix == 0 || count == 0) return env.Undefined();
  const uint8_t* s0 = static_cast<const uint8_t*>(src.data) + srcOffset * 4;
  uint8_t* d0 = static_cast<uint8_t*>(dst.data) + dstOffset * 4;
  if (bytesOverlap(s0, (srcNeeded - srcOffset) * 4, d0, (dstNeeded - dstOffset) * 4)) throw Napi::RangeError::New(env, "transposeMatrices: src and dst overlap");
  const int64_t items = count * transposeColumnTiles(cols);
  const int64_t perItem = std::max<int64_t>(1, rows * std::min(cols, kTransposeTile));
  parallelFor(items, std::max<int64_t>(1, (int64_t(1) << 18) / perItem), [&](int64_t begin, int64_t end) {
    activeKernels().transpose32(reinterpret_cast<const uint32_t*>(s0), rows, cols, reinterpret_cast<uint32_t*>(d0), dstStride, begin, end);
  });
  return env.Undefined();
}

// swapMiddleAxes(src, a, b, c, d, dst): src [a, b, c, d] → dst [a, c, b, d] (transpose.h), 4-byte
// elements; sizes (overflow), lengths and overlap checked before any memory is touched.
Napi::Value SwapMiddleAxes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "swapMiddleAxes: expected 6 arguments");
  int64_t dims[4];
  const char* names[4] = {"swapMiddleAxes: a", "swapMiddleAxes: b", "swapMiddleAxes: c", "swapMiddleAxes: d"};
  for (int i = 0; i < 4; i++) dims[i] = integerArg(env, info[1 + i], names[i], 0, kMaxElements);
  int64_t n = 1;
  for (int64_t v : dims) n = checkedProduct(env, n, v, "swapMiddleAxes: the tensor is too large", kMaxElements);
  const ArrayView src = elements32(env, info[0], "swapMiddleAxes: src", static_cast<size_t>(n));
  const ArrayView dst = elements32(env, info[5], "swapMiddleAxes: dst", static_cast<size_t>(n));
  if (n == 0) return env.Undefined();
  if (bytesOverlap(src.data, static_cast<size_t>(n) * 4, dst.data, static_cast<size_t>(n) * 4)) throw Napi::RangeError::New(env, "swapMiddleAxes: src and dst overlap");
  const int64_t perItem = dims[2] * dims[3];
  parallelFor(dims[0] * dims[1], std::max<int64_t>(1, (int64_t(1) << 16) / perItem), [&](int64_t begin, int64_t end) {
    swapMiddleAxes32(reinterpret_cast<const uint32_t*>(src.data), dims[1], dims[2], dims[3], reinterpret_cast<uint32_t*>(dst.data), begin, end);
  });
  return env.Undefined();
}

}  // namespace

void registerTranspose(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "transposeMatrices", TransposeMatrices);
  exportFunction(env, exports, "swapMiddleAxes", SwapMiddleAxes);
}

}  // namespace fp4kit
