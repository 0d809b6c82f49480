// N-API glue of the leading-rows sum (sum.h): sumLeadingRows(x, rows, n, out), every size,
// kind and overlap checked before any memory is touched.
#include <napi.h>

#include <algorithm>
#include <string>

#include "napi_args.h"
#include "sum.h"
#include "sum_binding.h"
#include "threads.h"

namespace fp4kit {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;

// sumLeadingRows(x Float32Array, rows, n, out Float32Array): out[0, n) = the column sums of x[rows][n].
Napi::Value SumLeadingRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throw Napi::TypeError::New(env, "sumLeadingRows: expected 4 arguments");
  const int64_t rows = integerArg(env, info[1], "sumLeadingRows: rows", 0, kMaxElements);
  const int64_t n = integerArg(env, info[2], "sumLeadingRows: n", 0, kMaxElements);
  const int64_t elements = checkedProduct(env, rows, n, "sumLeadingRows: rows × n is too large", kMaxElements);
  const float* x = typedData<float>(env, info[0], "sumLeadingRows: x", static_cast<size_t>(elements));
  float* out = typedData<float>(env, info[3], "sumLeadingRows: out", static_cast<size_t>(n));
  if (bytesOverlap(x, static_cast<size_t>(elements) * 4, out, static_cast<size_t>(n) * 4)) throw Napi::RangeError::New(env, "sumLeadingRows: x and out overlap");
  // Column ranges per thread (each column summed by one thread, in row order: the same bits).
  parallelFor(n, std::max<int64_t>(16, (int64_t(1) << 16) / std::max<int64_t>(1, rows)),
              [&](int64_t begin, int64_t end) { sumLeadingRows32(x, rows, n, out, begin, end); });
  return env.Undefined();
}

}  // namespace

void registerSum(Napi::Env env, Napi::Object exports) { exportFunction(env, exports, "sumLeadingRows", SumLeadingRows); }

}  // namespace fp4kit
