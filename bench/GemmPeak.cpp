//===- GemmPeak.cpp - the GEMM library's own peak, for benchmark ratios -------------===//
//
// llamac-bench-gemm [N] [repeats]: times cpu::gemmNT (BLIS sgemm) on N x N x N f32 matrices
// with the OpenMP thread count of the environment, and prints the best and median GFLOP/s
// of `repeats` runs after one warm-up. bench/bench-cpu.sh divides the generated programs'
// model FLOP/s by this figure, measured in the same run.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Device.h"
#include "runtime/cpu/CpuKernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

int main(int argc, char **argv) {
  int64_t n = argc > 1 ? std::atoll(argv[1]) : 2048;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 10;
  if (n <= 0 || repeats <= 0) {
    std::fprintf(stderr, "usage: llamac-bench-gemm [N > 0] [repeats > 0]\n");
    return 2;
  }
  std::vector<float> a(n * n), b(n * n), c(n * n);
  for (int64_t i = 0; i < n * n; ++i) {
    a[i] = float((i * 7) % 13) / 13.0f - 0.5f;
    b[i] = float((i * 5) % 11) / 11.0f - 0.5f;
  }
  llamac::cpu::gemmNT(n, n, n, a.data(), b.data(), c.data()); // warm-up
  std::vector<double> rates;
  for (int r = 0; r < repeats; ++r) {
    llamac::rt::Timer t;
    llamac::cpu::gemmNT(n, n, n, a.data(), b.data(), c.data());
    rates.push_back(2.0 * double(n) * double(n) * double(n) / t.seconds() / 1e9);
  }
  std::sort(rates.begin(), rates.end());
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::printf("sgemm %lldx%lldx%lld, %d threads: best %.1f GFLOP/s, median %.1f GFLOP/s\n",
              static_cast<long long>(n), static_cast<long long>(n), static_cast<long long>(n),
              threads, rates.back(), rates[rates.size() / 2]);
  return 0;
}
