// The gradient quantizer's phase 3 (gradient_quant_codes.h) compiled with the AVX-512 flags.
#include "gradient_quant_codes.h"

namespace fp4kit {
FP4KIT_GRADIENT_CODES_RUN(gradientCodesRunAvx512)
}
