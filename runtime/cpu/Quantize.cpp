//===- Quantize.cpp - int8 weights with one scale per row ---------------------------===//
#include "runtime/cpu/Quantize.h"

#include <algorithm>
#include <cmath>

void llamac::quantizeRowsQ8(const float *values, int64_t rows, int64_t cols, int8_t *q,
                            float *scales) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = values + r * cols;
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c)
      amax = std::max(amax, std::fabs(row[c]));
    float scale = amax / 127.0f;
    float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
    scales[r] = scale;
    for (int64_t c = 0; c < cols; ++c)
      q[r * cols + c] =
          static_cast<int8_t>(std::clamp(std::nearbyint(row[c] * inv), -127.0f, 127.0f));
  }
}
