// sum.h's loop, plain C++ (the compiler vectorises the column loop; -ffp-contract=off keeps
// each add a float32 add).
#include "sum.h"

namespace fp4kit {

void sumLeadingRows32(const float* x, int64_t rows, int64_t n, float* out, int64_t colBegin, int64_t colEnd) {
  for (int64_t i = colBegin; i < colEnd; i++) out[i] = 0.0f;
  for (int64_t r = 0; r < rows; r++) {
    const float* row = x + r * n;
    for (int64_t i = colBegin; i < colEnd; i++) out[i] += row[i];
  }
}

}  // namespace fp4kit
