// N-API glue of the error sums (error_sums.h): errorSums(src, dtype, decoded, rows, cols, sums
// [, histogram]), every kind, size and length checked before any memory is touched. Rows go to the
// addon's threads, each writing its rows' two sums and counting into a histogram of its own; the
// rows are then added to the running sums in row order here, so the bits never depend on the
// thread count, and the threads' counts (integers) to this call's, added to `histogram` once.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "dtype.h"
#include "error_sums.h"
#include "error_sums_binding.h"
#include "formats.h"
#include "napi_args.h"
#include "quantize.h"
#include "threads.h"

namespace fp4kit {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;
constexpr int64_t kPassRows = int64_t(1) << 16;

// errorSums(src Float32Array|Uint16Array, dtype, decoded Float32Array, rows, cols, sums Float64Array
// [, histogram Float64Array | undefined]): sums = [Σ(x − y)², Σx², max |x − y|] continued over
// rows × cols elements; histogram[b] += the number of elements whose x − y is in bin b (errorBin),
// for each of the kErrorBins bins, when the call has elements.
Napi::Value ErrorSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "errorSums: expected 6 arguments");
  ArgumentLog arrays;
  const int32_t dtype = static_cast<int32_t>(integerArg(env, info[1], "errorSums: dtype", kF32, kF16));
  const int64_t rows = integerArg(env, info[3], "errorSums: rows", 0, kMaxElements);
  const int64_t cols = integerArg(env, info[4], "errorSums: cols", 0, kMaxElements);
  const int64_t elements = checkedProduct(env, rows, cols, "errorSums: rows × cols is too large", kMaxElements);
  const size_t count = static_cast<size_t>(elements);
  const void* src = sourceArg(env, info[0], dtype, count, nullptr, "errorSums: src");
  const float* decoded = typedData<float>(env, info[2], "errorSums: decoded", count);
  double* sums = typedArrayOf<double>(env, info[5], "errorSums: sums", napi_float64_array, "Float64Array", 3);
  const bool counting = info.Length() > 6 && !info[6].IsUndefined();
  double* histogram =
      counting ? typedArrayOf<double>(env, info[6], "errorSums: histogram", napi_float64_array, "Float64Array", kErrorBins) : nullptr;
  arrays.requireOutputsDisjoint(env, "errorSums", {"sums", "histogram"});
  // An empty tensor adds nothing, however many rows of nothing it has.
  if (elements == 0) return env.Undefined();
  const ErrorSumsKernel kernel = activeKernels().errorSums;
  double squaredError = sums[0], squaredSource = sums[1], maxAbs = sums[2];
  // Rows in passes of at most kPassRows: the per-row sums take 16 bytes a row whatever cols is.
  std::vector<double> rowSums(static_cast<size_t>(2 * std::min(rows, kPassRows)));
  uint64_t total[kErrorBins] = {};  // this call's counts
  std::mutex lock;
  for (int64_t r0 = 0; r0 < rows; r0 += kPassRows) {
    const int64_t n = std::min(kPassRows, rows - r0);
    const void* passSrc = static_cast<const uint8_t*>(src) + r0 * cols * sourceElementBytes(dtype);
    const float* passDecoded = decoded + r0 * cols;
    parallelFor(n, std::max<int64_t>(1, (int64_t(1) << 15) / cols), [&](int64_t begin, int64_t end) {
      double m = -std::numeric_limits<double>::infinity();
      uint64_t counts[kErrorBins] = {};
      kernel(passSrc, dtype, passDecoded, cols, begin, end, rowSums.data(), &m, counting ? counts : nullptr);
      std::lock_guard<std::mutex> guard(lock);
      if (m > maxAbs) maxAbs = m;
      if (counting)
        for (int b = 0; b < kErrorBins; b++) total[b] += counts[b];
    });
    for (int64_t r = 0; r < n; r++) {
      squaredError += rowSums[static_cast<size_t>(2 * r)];
      squaredSource += rowSums[static_cast<size_t>(2 * r + 1)];
    }
  }
  sums[0] = squaredError;
  sums[1] = squaredSource;
  sums[2] = maxAbs;
  // Each count is at most kMaxElements < 2^53: exact as a double.
  if (counting)
    for (int b = 0; b < kErrorBins; b++) histogram[b] += static_cast<double>(total[b]);
  return env.Undefined();
}

}  // namespace

void registerErrorSums(Napi::Env env, Napi::Object exports) { exportFunction(env, exports, "errorSums", ErrorSums); }

}  // namespace fp4kit
