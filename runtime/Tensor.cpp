//===- Tensor.cpp - host tensors ---------------------------------------------------===//
#include "runtime/Tensor.h"

#include <cctype>
#include <cmath>
#include <cstring>

namespace llamac {

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F64: return "F64";
  case DType::F32: return "F32";
  case DType::BF16: return "BF16";
  case DType::F16: return "F16";
  case DType::I64: return "I64";
  case DType::I32: return "I32";
  }
  return "?";
}

std::optional<DType> parseDType(std::string_view name) {
  for (DType t : {DType::F64, DType::F32, DType::BF16, DType::F16, DType::I64, DType::I32})
    if (name == dtypeName(t))
      return t;
  return std::nullopt;
}

int dtypeSize(DType t) {
  switch (t) {
  case DType::F64: case DType::I64: return 8;
  case DType::F32: case DType::I32: return 4;
  case DType::BF16: case DType::F16: return 2;
  }
  return 0;
}

bool isFloat(DType t) { return t != DType::I64 && t != DType::I32; }

uint16_t floatToBF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f))
    return static_cast<uint16_t>((bits >> 16) | 0x40); // quiet NaN
  uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float bf16ToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t mant = x & 0x7fffff;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
  if (exp == 0xff) // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 0x1f) // overflow to inf
    return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) { // subnormal or zero
    if (e < -10)
      return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1)))
      ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
    ++half; // may carry into the exponent, which is the correct rounding
  return static_cast<uint16_t>(half);
}

float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else { // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Truncates toward zero and wraps modulo 2^bits into two's complement range, the way integer
// arithmetic overflows; NaN and infinities give 0. A plain static_cast is undefined behaviour
// for NaN and out-of-range values, which an interpreter computing i32/i64 in doubles produces.
static double wrapToInt(double v, int bits) {
  if (!std::isfinite(v))
    return 0.0;
  double t = std::trunc(v) + 0.0; // + 0.0: an integer has no negative zero (trunc(-0.5) is -0)
  double modulus = std::ldexp(1.0, bits);
  double half = std::ldexp(1.0, bits - 1);
  if (t >= -half && t < half)
    return t;
  t = std::fmod(t, modulus); // exact, in (-modulus, modulus)
  if (t >= half)
    t -= modulus;
  else if (t < -half)
    t += modulus;
  return t;
}

double roundTo(DType t, double v) {
  switch (t) {
  case DType::F64: return v;
  case DType::F32: return static_cast<float>(v);
  case DType::BF16: return bf16ToFloat(floatToBF16(static_cast<float>(v)));
  case DType::F16: return halfToFloat(floatToHalf(static_cast<float>(v)));
  case DType::I64: return wrapToInt(v, 64);
  case DType::I32: return wrapToInt(v, 32);
  }
  return v;
}

Tensor::Tensor(DType dtype, std::vector<int64_t> shape, double fill)
    : dtype(dtype), shape(std::move(shape)) {
  data.assign(numElements(), fill);
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<int64_t> Tensor::strides() const {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t i = rank() - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

void Tensor::round() {
  if (dtype == DType::F64)
    return;
  for (double &v : data)
    v = roundTo(dtype, v);
}

std::string shapeString(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

std::string Tensor::describe() const {
  std::string name = dtypeName(dtype);
  for (char &c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name + "[" + shapeString(shape) + "]";
}

} // namespace llamac
