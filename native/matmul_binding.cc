// N-API glue for the block matmul: repacked weights live in a JS object that owns them
// (finalised with the object), calls check every size in C++ before touching memory, and large
// products run on the addon's worker threads, synchronously or as a Promise (AsyncWorker), with
// the same bits either way because every output column is computed by exactly one thread.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "matmul.h"
#include "matmul_binding.h"

namespace fp4kit {
namespace {

bool useAvx512Matmul() {
  static const bool has = cpuHasAvx512Vnni();
  const char* forced = std::getenv("FP4KIT_SIMD");
  if (forced && std::string(forced) == "scalar") return false;
  if (forced && std::string(forced) == "avx2") return false;
  return has;
}

int threadCount() {
  const char* env = std::getenv("FP4KIT_THREADS");
  if (env) {
    const int n = std::atoi(env);
    if (n >= 1 && n <= 64) return n;
  }
  return std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
}

// Run f(begin, end) over [0, count) split into contiguous ranges, one per thread.
template <typename F>
void parallelFor(int64_t count, int64_t minPerThread, F f) {
  const int threads = static_cast<int>(std::min<int64_t>(threadCount(), std::max<int64_t>(1, count / std::max<int64_t>(1, minPerThread))));
  if (threads <= 1) {
    f(0, count);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (count + threads - 1) / threads;
  for (int t = 1; t < threads; t++) {
    const int64_t b = t * per, e = std::min(count, b + per);
    if (b < e) pool.emplace_back([=] { f(b, e); });
  }
  f(0, std::min(count, per));
  for (auto& th : pool) th.join();
}

template <typename T>
T* typedData(const Napi::Env& env, const Napi::Value& v, const char* name, size_t expected, bool allowNull = false) {
  if (allowNull && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray()) throw Napi::TypeError::New(env, std::string(name) + " must be a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.ElementSize() != sizeof(T)) throw Napi::TypeError::New(env, std::string(name) + " has the wrong element type");
  if (ta.ElementLength() != expected) {
    throw Napi::RangeError::New(env, std::string(name) + " must hold " + std::to_string(expected) + " elements, got " +
                                         std::to_string(ta.ElementLength()));
  }
  if (expected > 0 && ta.ArrayBuffer().Data() == nullptr) throw Napi::TypeError::New(env, std::string(name) + " is detached");
  return reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}

int64_t integerArg(const Napi::Env& env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int64_t>(d);
}

constexpr int64_t kMaxDim = int64_t(1) << 31;

// repackFp4Weights(nibbles u8, blockScales f32, fp8Blocks u8|null, fp8Codes u8|null, n, k, blockSize) → External
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
  auto* packed = new PackedFp4Weights();
  repackFp4Weights(nibbles, scales, fp8Blocks, fp8Codes, n, k, blockSize, *packed);
  const size_t bytes = packed->nibbles.size() + packed->scales.size() * 4 + packed->fp8Codes.size() + packed->fp8Lanes.size() * 2;
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
  return Napi::External<PackedFp4Weights>::New(env, packed, [bytes](Napi::Env e, PackedFp4Weights* p) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(bytes));
    delete p;
  });
}

struct Fp4Int8Call {
  Int8Activations a;
  const PackedFp4Weights* b = nullptr;
  const float* bias = nullptr;
  float* out = nullptr;
  void run() const {
    const bool simd = useAvx512Matmul();
    // Enough tiles per thread that starting a thread pays off: ~2M multiply-adds.
    const int64_t macsPerTile = std::max<int64_t>(1, a.rows * b->k * kTileColumns);
    parallelFor(b->tiles, std::max<int64_t>(1, (int64_t(1) << 21) / macsPerTile), [this, simd](int64_t begin, int64_t end) {
      if (simd) matmulFp4Int8Avx512(a, *b, bias, out, begin, end);
      else matmulFp4Int8Scalar(a, *b, bias, out, begin, end);
    });
  }
};

// Shared argument parsing: (packed External, aCodes i8/u8, aScales f32, m, bias f32|null, out f32)
Fp4Int8Call parseFp4Int8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6) throw Napi::TypeError::New(env, "matmulFp4Int8: expected 6 arguments");
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "matmulFp4Int8: weights must come from repackFp4Weights");
  Fp4Int8Call call;
  call.b = info[0].As<Napi::External<PackedFp4Weights>>().Data();
  const int64_t m = integerArg(env, info[3], "m", 0, kMaxDim);
  const int64_t paddedK = (call.b->k + 31) / 32 * 32;
  call.a.codes = typedData<int8_t>(env, info[1], "activation codes", static_cast<size_t>(m * paddedK));
  call.a.blockScales = typedData<float>(env, info[2], "activation scales", static_cast<size_t>(m * paddedK / 32));
  call.a.rows = m;
  call.a.paddedK = paddedK;
  call.bias = typedData<float>(env, info[4], "bias", static_cast<size_t>(call.b->n), true);
  call.out = typedData<float>(env, info[5], "out", static_cast<size_t>(m * call.b->n));
  prepareInt8Activations(call.a, call.b->units, call.b->unit);
  return call;
}

Napi::Value MatmulFp4Int8(const Napi::CallbackInfo& info) {
  Fp4Int8Call call = parseFp4Int8(info);
  call.run();
  return info.Env().Undefined();
}

// The Promise variant: the product runs off the JS thread; the typed arrays are kept alive by
// references until it resolves.
class MatmulWorker : public Napi::AsyncWorker {
 public:
  MatmulWorker(Napi::Env env, Fp4Int8Call call, std::vector<Napi::Reference<Napi::Value>> keep)
      : Napi::AsyncWorker(env), call_(std::move(call)), keep_(std::move(keep)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { call_.run(); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Fp4Int8Call call_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value MatmulFp4Int8Async(const Napi::CallbackInfo& info) {
  Fp4Int8Call call = parseFp4Int8(info);
  std::vector<Napi::Reference<Napi::Value>> keep;
  for (size_t i = 0; i < 6; i++) keep.push_back(Napi::Persistent(info[i]));
  auto* worker = new MatmulWorker(info.Env(), std::move(call), std::move(keep));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// matmulDecoded(aValues f32, aScales f32, m, aBlock, bValues f32, bScales f32, n, bBlock, k, bias|null, out)
Napi::Value MatmulDecoded(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 11) throw Napi::TypeError::New(env, "matmulDecoded: expected 11 arguments");
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
  parallelFor(n, std::max<int64_t>(1, (int64_t(1) << 20) / std::max<int64_t>(1, m * k)),
              [&](int64_t begin, int64_t end) { matmulDecodedScalar(a, b, bias, out, begin, end); });
  return env.Undefined();
}

}  // namespace

void registerMatmul(Napi::Env env, Napi::Object exports) {
  exports.Set("repackFp4Weights", Napi::Function::New(env, RepackFp4Weights));
  exports.Set("matmulFp4Int8", Napi::Function::New(env, MatmulFp4Int8));
  exports.Set("matmulFp4Int8Async", Napi::Function::New(env, MatmulFp4Int8Async));
  exports.Set("matmulDecoded", Napi::Function::New(env, MatmulDecoded));
  exports.Set("matmulSimd", Napi::String::New(env, useAvx512Matmul() ? "avx512-vnni" : "scalar"));
}

}  // namespace fp4kit
EOF
cat > native/matmul_binding.h <<'EOF'
// Registers the block-matmul functions on the addon's exports (called from binding.cc).
#pragma once
#include <napi.h>

namespace fp4kit {
void registerMatmul(Napi::Env env, Napi::Object exports);
}
EOF
cd /tmp && g++ -O3 -std=c++17 -ffp-contract=off -I/work/main/node_modules/node-addon-api -I/usr/include/node -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -fexceptions -c /work/main/native/matmul_binding.cc -o mb.o 2>&1 | head -20; ls /usr/include/node 2>/dev/null | head -3