//===- Quantize.h - int8 weights with one scale per row -------------------*- C++ -*-===//
//
// The weight format of `llamac compile --weights int8` (inference): each row of a [N, K]
// weight is stored as K int8 values and one f32 scale, max |row| / 127, so that
// value ~= q * scale with q = round(value / scale) in [-127, 127]. The same scheme
// quantises activations row by row inside the int8 GEMM kernel (cpu::gemmNTQ8).
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CPU_QUANTIZE_H
#define LLAMAC_RUNTIME_CPU_QUANTIZE_H

#include <cstdint>

namespace llamac {

/// Quantises `rows` rows of `cols` values; a row of zeros gets scale 0 and q = 0.
void quantizeRowsQ8(const float *values, int64_t rows, int64_t cols, int8_t *q,
                    float *scales);

} // namespace llamac

#endif
