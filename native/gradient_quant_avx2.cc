// The gradient quantizer's phase 3 (gradient_quant_codes.h) compiled with -mavx2.
#include "gradient_quant_codes.h"

namespace fp4kit {
FP4KIT_GRADIENT_CODES_RUN(gradientCodesRunAvx2)
}
