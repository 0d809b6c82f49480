// Argument checks shared by the N-API glue: every typed array's element type, length and
// attachment is checked in C++ before any kernel touches its memory, so a bad call from
// JavaScript becomes a TypeError/RangeError, never a crash.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace fp4kit {

template <typename T>
static T* typedData(const Napi::Env& env, const Napi::Value& v, const char* name, size_t expected, bool allowNull = false) {
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

// A typed array of exactly this kind (Float32Array, Uint16Array, Uint8Array …) and length.
template <typename T>
static T* typedArrayOf(const Napi::Env& env, const Napi::Value& v, const char* name, napi_typedarray_type type,
                       const char* typeName, size_t expected) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(env, std::string(name) + " must be a " + typeName);
  }
  return typedData<T>(env, v, name, expected);
}

static int64_t integerArg(const Napi::Env& env, const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int64_t>(d);
}

}  // namespace fp4kit
