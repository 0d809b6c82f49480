// AVX-512 VNNI block matmul for CPUs without VBMI (built with -mavx512f -mavx512bw -mavx512vnni):
// E2M1 nibbles decoded with vpshufb, which reads 4 index bits but zeroes a byte whose bit 7 is set,
// so each nibble is masked out first. The kernel itself is in matmul_avx512_kernel.h.
#include "matmul_avx512_kernel.h"

namespace fp4kit {
namespace {

struct ShuffleDecoder {
  const __m512i lut = e2m1Lut();
  const __m512i lowNibble = _mm512_set1_epi8(0x0f);
  __m512i low(__m512i v) const { return _mm512_shuffle_epi8(lut, _mm512_and_si512(v, lowNibble)); }
  __m512i high(__m512i v) const { return _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), lowNibble)); }
};

}  // namespace

void matmulFp4Int8Avx512(const Int8Activations& a, const PackedFp4Weights& b, const float* bias, float* out,
                         int64_t tileBegin, int64_t tileEnd) {
  matmulFp4Int8Avx512With<ShuffleDecoder>(a, b, bias, out, tileBegin, tileEnd);
}

}  // namespace fp4kit
