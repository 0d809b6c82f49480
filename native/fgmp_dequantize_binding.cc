// N-API glue of FGMP dequantization (fgmp_dequantize.h): dequantizeFgmp({ mask, data, scales,
// cols, rowBegin, rowEnd, tensorScale, fp8Scale, out }), every field read once before any is
// checked (a getter must not detach a buffer whose pointer we hold), every kind and length checked
// before any memory is touched: the mask must reach row rowEnd, and data and scales what its
// blocks up to there take. The rows go to the addon's threads (each finds its place in the
// stream from the mask).
#include <napi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fgmp_dequantize.h"
#include "fgmp_dequantize_binding.h"
#include "napi_args.h"
#include "threads.h"

namespace fp4kit {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 46;
constexpr const char* kFields[] = {"mask", "data", "scales", "cols", "rowBegin", "rowEnd", "tensorScale", "fp8Scale", "out"};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

float scaleArg(const Napi::Env& env, const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("dequantizeFgmp: ") + name + " must be a number");
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

Napi::Value DequantizeFgmp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, "dequantizeFgmp: arguments must be an object { mask, data, scales, cols, rowBegin, rowEnd, tensorScale, fp8Scale, out }");
  }
  const Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value f[kFieldCount];
  for (size_t i = 0; i < kFieldCount; i++) f[i] = o.Get(kFields[i]);
  const Napi::Value &mask = f[0], &data = f[1], &scales = f[2], &out = f[8];
  FgmpStream s{};
  s.cols = integerArg(env, f[3], "dequantizeFgmp: cols", 0, kMaxElements);
  const int64_t rowBegin = integerArg(env, f[4], "dequantizeFgmp: rowBegin", 0, kMaxElements);
  const int64_t rowEnd = integerArg(env, f[5], "dequantizeFgmp: rowEnd", 0, kMaxElements);
  if (rowBegin > rowEnd) throw Napi::RangeError::New(env, "dequantizeFgmp: rowBegin is past rowEnd");
  s.tensorScale = scaleArg(env, f[6], "tensorScale");
  s.fp8Scale = scaleArg(env, f[7], "fp8Scale");
  checkedProduct(env, rowEnd, s.cols, "dequantizeFgmp: rowEnd × cols is too large", kMaxElements);
  const int64_t blocksPerRow = (s.cols + kFgmpDequantizeBlock - 1) / kFgmpDequantizeBlock;
  const int64_t endBlock = rowEnd * blocksPerRow;
  // The mask places every block in data and scales: the lengths checked here and the kernel's walk
  // must read the same mask. Another thread may write a SharedArrayBuffer's while we run (the walk
  // then read FP4 bytes as FP8 and went past data: wrong values, or SIGSEGV), so such a mask is
  // copied first (a bit a block: 1/512 of the bytes out takes).
  const size_t maskBytes = static_cast<size_t>((endBlock + 7) / 8);
  const ArrayView maskView = checkedView(env, mask, "dequantizeFgmp: mask", 1, napi_uint8_array, "Uint8Array", maskBytes);
  std::vector<uint8_t> maskCopy;
  s.mask = stableElements(maskView, maskBytes, maskCopy);
  const int64_t fp8 = fgmpFp8BlocksBefore(s.mask, endBlock);
  s.data = typedData<uint8_t>(env, data, "dequantizeFgmp: data", static_cast<size_t>(fp8 * 16 + (endBlock - fp8) * 8));
  s.scales = typedData<uint8_t>(env, scales, "dequantizeFgmp: scales", static_cast<size_t>(endBlock - fp8));
  const size_t outCount = static_cast<size_t>((rowEnd - rowBegin) * s.cols);
  float* values = typedData<float>(env, out, "dequantizeFgmp: out", outCount);
  // The kernel reads the mask (where each block lies in the stream) while it writes out: an out over
  // the mask, data or scales would move blocks after their sizes were checked (a read past data).
  const size_t fp4 = static_cast<size_t>(endBlock - fp8);
  if (bytesOverlap(values, outCount * 4, maskView.data, maskBytes) ||
      bytesOverlap(values, outCount * 4, s.data, static_cast<size_t>(fp8) * 16 + fp4 * 8) || bytesOverlap(values, outCount * 4, s.scales, fp4)) {
    throw Napi::RangeError::New(env, "dequantizeFgmp: out shares memory with mask, data or scales");
  }
  if (s.cols == 0) return env.Undefined();  // rows of nothing: nothing to write
  parallelFor(rowEnd - rowBegin, std::max<int64_t>(1, (int64_t(1) << 15) / s.cols), [&](int64_t b, int64_t e) {
    dequantizeFgmpRows(s, rowBegin + b, rowBegin + e, values + b * s.cols);
  });
  return env.Undefined();
}

}  // namespace

void registerFgmpDequantize(Napi::Env env, Napi::Object exports) { exportFunction(env, exports, "dequantizeFgmp", DequantizeFgmp); }

}  // namespace fp4kit
