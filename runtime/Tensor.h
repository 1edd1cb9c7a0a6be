//===- Tensor.h - host tensors for I/O and the reference interpreter ----*- C++ -*-===//
//
// A dense, row-major host tensor. Values are held as doubles whatever the element type:
// integers up to 2^53 are exact, and narrower floats are rounded to their type when stored
// (roundTo), so one simple representation serves f64, f32, bf16, f16, i32 and i64.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_TENSOR_H
#define LLAMAC_RUNTIME_TENSOR_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llamac {

enum class DType { F64, F32, BF16, F16, I64, I32 };

/// "F32", "BF16", ... as safetensors spells them.
const char *dtypeName(DType t);
std::optional<DType> parseDType(std::string_view name);
/// Bytes per element in a file.
int dtypeSize(DType t);
bool isFloat(DType t);

/// IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN).
uint16_t floatToHalf(float f);
float halfToFloat(uint16_t h);
uint16_t floatToBF16(float f);
float bf16ToFloat(uint16_t b);

/// The value `v` takes when stored as `t` (f32/bf16/f16 rounding, integer truncation).
double roundTo(DType t, double v);

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  Tensor(DType dtype, std::vector<int64_t> shape, double fill = 0.0);

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numElements() const;
  int64_t dim(int64_t i) const { return shape[i < 0 ? i + rank() : i]; }
  /// Row-major strides in elements.
  std::vector<int64_t> strides() const;
  double &operator[](int64_t i) { return data[i]; }
  double operator[](int64_t i) const { return data[i]; }

  /// Rounds every element to the dtype.
  void round();
  /// "f32[2x3]".
  std::string describe() const;
};

/// "2x3x4" (or "scalar").
std::string shapeString(const std::vector<int64_t> &shape);

} // namespace llamac

#endif
