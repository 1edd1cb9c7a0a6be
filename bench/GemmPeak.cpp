//===- GemmPeak.cpp - the GEMM library's own peak, for benchmark ratios -------------===//
//
// llamac-bench-gemm [N] [repeats]: times cpu::gemmNT (BLIS sgemm) on N x N x N f32 matrices
// with the OpenMP thread count of the environment, and prints the best and median GFLOP/s
// of `repeats` runs after one warm-up. bench/bench-cpu.sh divides the generated programs'
// model FLOP/s by this figure, measured in the same run.
//
// llamac-bench-gemm --shapes FILE [repeats]: BLIS against llamac's own GEMM (gemmNTOwn ...,
// runtime/cpu/Gemm.cpp) on the shapes FILE lists ("-": stdin), one per line:
// "gemm_nt|gemm_nn|gemm_tn M N K [accumulate]". The two alternate, the median of `repeats`
// runs of each after one warm-up (caches as the previous run left them, like a kernel inside
// a program), and the table gives both GFLOP/s and own / BLIS. bench/bench-gemm.sh takes
// the shapes from a compiled program's kernel IR.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Device.h"
#include "runtime/cpu/CpuKernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using Gemm = void (*)(int64_t, int64_t, int64_t, const float *, const float *, float *, bool);

void ownNT(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, bool acc) {
  llamac::cpu::gemmNTOwn(m, n, k, a, b, c, acc);
}
void ownNN(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, bool acc) {
  llamac::cpu::gemmNNOwn(m, n, k, a, b, c, acc);
}
void ownTN(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c, bool acc) {
  llamac::cpu::gemmTNOwn(m, n, k, a, b, c, acc);
}

double medianSeconds(Gemm f, int64_t m, int64_t n, int64_t k, const float *a, const float *b,
                     float *c, bool acc, int repeats) {
  f(m, n, k, a, b, c, acc); // warm-up
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    llamac::rt::Timer timer;
    f(m, n, k, a, b, c, acc);
    t.push_back(timer.seconds());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int compareShapes(std::istream &in, int repeats) {
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::printf("BLIS against llamac's own GEMM, %d threads, median of %d runs (warm caches)\n",
              threads, repeats);
  std::printf("%-8s %6s %6s %6s %3s %10s %10s %10s %10s %7s\n", "kernel", "M", "N", "K", "acc",
              "blis ms", "blis GF/s", "own ms", "own GF/s", "blis/own");
  double blisTotal = 0, ownTotal = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string kind;
    int64_t m = 0, n = 0, k = 0;
    int acc = 0;
    if (!(fields >> kind >> m >> n >> k) || kind[0] == '#')
      continue;
    fields >> acc;
    // The f32 overloads (the bf16 ones take uint16_t).
    Gemm blis = kind == "gemm_nt"   ? Gemm(&llamac::cpu::gemmNT)
                : kind == "gemm_nn" ? Gemm(&llamac::cpu::gemmNN)
                : kind == "gemm_tn" ? Gemm(&llamac::cpu::gemmTN)
                                    : nullptr;
    Gemm own = kind == "gemm_nt" ? ownNT : kind == "gemm_nn" ? ownNN : ownTN;
    if (!blis || m <= 0 || n <= 0 || k <= 0) {
      std::fprintf(stderr, "llamac-bench-gemm: bad shape line '%s'\n", line.c_str());
      return 2;
    }
    std::vector<float> a(size_t(m * k)), b(size_t(k * n)), c(size_t(m * n));
    for (size_t i = 0; i < a.size(); ++i)
      a[i] = float((i * 7) % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < b.size(); ++i)
      b[i] = float((i * 5) % 11) / 11.0f - 0.5f;
    // Alternate, three rounds each, keep each one's best median: the VM drifts.
    double tb = 1e30, to = 1e30;
    for (int round = 0; round < 3; ++round) {
      tb = std::min(tb, medianSeconds(blis, m, n, k, a.data(), b.data(), c.data(), acc, repeats));
      to = std::min(to, medianSeconds(own, m, n, k, a.data(), b.data(), c.data(), acc, repeats));
    }
    double flop = 2.0 * double(m) * double(n) * double(k);
    blisTotal += tb;
    ownTotal += to;
    std::printf("%-8s %6lld %6lld %6lld %3d %10.3f %10.1f %10.3f %10.1f %7.2f\n", kind.c_str(),
                static_cast<long long>(m), static_cast<long long>(n),
                static_cast<long long>(k), acc, tb * 1e3, flop / tb / 1e9, to * 1e3,
                flop / to / 1e9, tb / to);
    std::fflush(stdout);
  }
  std::printf("total: blis %.3f ms, own %.3f ms, blis/own %.2f (above 1: own faster)\n",
              blisTotal * 1e3, ownTotal * 1e3, blisTotal / ownTotal);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc > 2 && std::strcmp(argv[1], "--shapes") == 0) {
    int repeats = argc > 3 ? std::atoi(argv[3]) : 10;
    if (repeats <= 0)
      repeats = 10;
    if (std::strcmp(argv[2], "-") == 0)
      return compareShapes(std::cin, repeats);
    std::ifstream file(argv[2]);
    if (!file) {
      std::fprintf(stderr, "llamac-bench-gemm: cannot read %s\n", argv[2]);
      return 2;
    }
    return compareShapes(file, repeats);
  }
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
