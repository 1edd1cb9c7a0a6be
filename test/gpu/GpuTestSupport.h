//===- GpuTestSupport.h - what the GPU tests share ---------------------------*- C++ -*-===//
//
// Random inputs, device arrays, and the comparisons of test/gpu's tests against the CPU
// kernels or exact copies.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_TEST_GPU_GPUTESTSUPPORT_H
#define LLAMAC_TEST_GPU_GPUTESTSUPPORT_H

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace llamac::gputest {

/// n normally distributed floats.
inline std::vector<float> randomVec(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

/// A device array of T, freed on destruction; uploads and downloads synchronously.
template <typename T> class DeviceArray {
public:
  explicit DeviceArray(size_t n) : size(n) {
    if (cudaMalloc(&ptr, sizeof(T) * std::max<size_t>(n, 1)) != cudaSuccess)
      ptr = nullptr;
    EXPECT_NE(ptr, nullptr) << "cudaMalloc of " << n << " elements";
  }
  explicit DeviceArray(const std::vector<T> &values) : DeviceArray(values.size()) {
    upload(values);
  }
  DeviceArray(const DeviceArray &) = delete;
  DeviceArray &operator=(const DeviceArray &) = delete;
  ~DeviceArray() { cudaFree(ptr); }

  void upload(const std::vector<T> &values) {
    ASSERT_EQ(values.size(), size);
    ASSERT_EQ(cudaMemcpy(ptr, values.data(), sizeof(T) * size, cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  std::vector<T> download() const {
    std::vector<T> out(size);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr, sizeof(T) * size, cudaMemcpyDeviceToHost),
              cudaSuccess);
    return out;
  }
  T value() const { return download().at(0); }

  T *ptr = nullptr;
  size_t size;
};

/// max |got - want| <= rel * max |want| over the finite elements of want; infinities must
/// match exactly and a NaN only where want has one.
inline ::testing::AssertionResult close(const std::vector<float> &got,
                                        const std::vector<float> &want, double rel) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << "size " << got.size() << " instead of " << want.size();
  double scale = 0, err = 0;
  int64_t worst = -1;
  for (float w : want)
    if (std::isfinite(w))
      scale = std::max(scale, std::abs(double(w)));
  for (size_t i = 0; i < want.size(); ++i) {
    double w = want[i], g = got[i];
    if (std::isnan(w) || std::isnan(g)) {
      if (std::isnan(w) != std::isnan(g))
        return ::testing::AssertionFailure() << "element " << i << ": got " << g << " want " << w;
      continue;
    }
    if (std::isinf(w) || std::isinf(g)) {
      if (w != g)
        return ::testing::AssertionFailure() << "element " << i << ": got " << g << " want " << w;
      continue;
    }
    if (std::abs(g - w) > err) {
      err = std::abs(g - w);
      worst = int64_t(i);
    }
  }
  if (err <= rel * std::max(scale, 1e-30))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst << ": got " << got[worst] << " want " << want[worst]
         << " (error " << err << ", max |want| " << scale << ", tolerance " << rel << ")";
}

inline ::testing::AssertionResult close(float got, float want, double rel) {
  return close(std::vector<float>{got}, std::vector<float>{want}, rel);
}

inline bool bitEqual(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

} // namespace llamac::gputest

#endif
