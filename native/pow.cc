// pow.h's loops, plain C++ (the compiler vectorises them; -ffp-contract=off keeps each multiply
// one float64 multiply, as in JavaScript).
#include "pow.h"

namespace fp4kit {

void powerFloat32(const float* x, int exponent, float* out, int64_t begin, int64_t end) {
  if (exponent == 2) {
    for (int64_t i = begin; i < end; i++) {
      const double v = x[i];
      out[i] = static_cast<float>(v * v);
    }
  } else {
    for (int64_t i = begin; i < end; i++) {
      const double v = x[i];
      out[i] = static_cast<float>(v * v * v);
    }
  }
}

}  // namespace fp4kit
