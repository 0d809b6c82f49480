// A Promise-returning call: the arguments are checked on the JavaScript thread, the work (any type
// with run()) executes on libuv's pool, and the job owns every byte it touches (job_buffers.h):
// inputs snapshotted, outputs staged and copied back when the Promise settles. The object
// arguments (weights, SharedArrayBuffer-backed arrays) are referenced until then.
//
// Environment teardown (a worker_threads Worker terminated, process exit): Node waits for running
// pool work before it frees the environment, and the completion then finds that JavaScript can no
// longer run. Settling the Promise fails there; that failure is swallowed (nobody can observe the
// Promise any more) instead of escaping as a C++ exception, which would abort the whole process.
#pragma once
#include <napi.h>

#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "job_buffers.h"

namespace fp4kit {

template <typename Call>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  // Parses the arguments into a Call whose buffers belong to the job (`parse(info, &job)`), queues
  // it and returns its Promise. An argument error throws here, before anything is queued.
  template <typename Parse>
  static Napi::Value Start(const Napi::CallbackInfo& info, Parse parse) {
    Napi::Env env = info.Env();
    std::unique_ptr<PromiseWorker> worker(new PromiseWorker(env));
    try {
      worker->call_ = parse(info, &worker->job_);
    } catch (...) {
      worker->job_.release(env);
      throw;
    }
    for (size_t i = 0; i < info.Length(); i++) {
      if (info[i].IsObject()) worker->keep_.push_back(Napi::Persistent(info[i]));
    }
    napi_value promise = nullptr;
    if (napi_create_promise(env, &worker->deferred_, &promise) != napi_ok) throw Napi::Error::New(env, "could not create a Promise");
    worker.release()->Queue();
    return Napi::Value(env, promise);
  }

  void Execute() override {
    try {
      call_.run();
    } catch (const std::bad_alloc&) {
      SetError("out of memory (a native allocation failed)");  // the Promise rejects with this
    }
  }

  void OnOK() override {
    try {
      napi_value error = nullptr;
      try {
        job_.finish(Env());
      } catch (const Napi::Error& e) {
        error = e.Value();
      }
      settle(error == nullptr, error ? error : Env().Undefined());
    } catch (...) {
      // The environment is going away: nothing to report to.
    }
  }

  void OnError(const Napi::Error& e) override {
    try {
      settle(false, e.Value());
    } catch (...) {
    }
  }

  ~PromiseWorker() override { job_.release(Env()); }

 private:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env) {}

  // Never throws: during teardown napi_resolve_deferred fails and there is nobody to tell.
  void settle(bool ok, napi_value value) noexcept {
    if (deferred_ == nullptr) return;
    napi_deferred d = deferred_;
    deferred_ = nullptr;
    if (ok) napi_resolve_deferred(Env(), d, value);
    else napi_reject_deferred(Env(), d, value);
  }

  Call call_{};
  JobBuffers job_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
  napi_deferred deferred_ = nullptr;
};

}  // namespace fp4kit
