// A Promise-returning call: the work (any type with run()) executes on libuv's pool, the
// references keep the caller's typed arrays alive until the Promise settles.
#pragma once
#include <napi.h>

#include <utility>
#include <vector>

namespace fp4kit {

template <typename Call>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, Call call, std::vector<Napi::Reference<Napi::Value>> keep)
      : Napi::AsyncWorker(env), call_(std::move(call)), keep_(std::move(keep)), deferred_(Napi::Promise::Deferred::New(env)) {}
  void Execute() override { call_.run(); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  // Queues `call` and returns its Promise; every object argument of `info` is kept alive.
  static Napi::Promise Start(const Napi::CallbackInfo& info, Call call) {
    std::vector<Napi::Reference<Napi::Value>> keep;
    for (size_t i = 0; i < info.Length(); i++) {
      if (info[i].IsObject()) keep.push_back(Napi::Persistent(info[i]));
    }
    auto* worker = new PromiseWorker(info.Env(), std::move(call), std::move(keep));
    Napi::Promise p = worker->deferred_.Promise();
    worker->Queue();
    return p;
  }

 private:
  Call call_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
  Napi::Promise::Deferred deferred_;
};

}  // namespace fp4kit
