//===- Tune.cpp - `llamac tune` ------------------------------------------------------===//
//
// Measures, on the machine at hand, the variants of every distinct tunable kernel (kind +
// shapes + element type) that a model's compiled program launches, and records the fastest
// in a tuning database (codegen/TuningDB.h) that `llamac compile --tuning-db` reads.
//
// The variants come from codegen/Tunables.h. All of them are timed by one generated
// program, built like the executables `llamac compile` makes, so the kernels run exactly as
// they will in the compiled program: the real buffer layout, the real thread count. Each
// variant's outputs are first compared with the default variant's on the same inputs, and
// only a variant within 1e-4 (norm-wise) may win; times are the median of --repeats runs
// after two warm-up runs, with the caches flushed (64 MiB written) before each, or, with
// --cache warm, as the previous run left them (closer to a kernel inside a program, whose
// inputs the previous kernel has just written).
//
// --target cuda tunes the GPU kernels (codegen/Tunables.h: flash attention's tiles, the rank
// of a GEMM's cuBLASLt algorithm) the same way, with a CUDA benchmark built by nvcc like the
// programs of `llamac compile --target cuda`: the launches are the CUDA emitter's calls on
// the execution state a generated program opens, timed with CUDA events (the L2 cache
// flushed by a 256 MiB memset before each run, or --cache warm), and checked against the
// default within the rounding of the program's --precision. The benchmark names the GPU and
// the CUDA libraries it runs with, and the entries are recorded under that key.
//
// The choice is made once, here, and compiled into the program: every process of a
// multi-rank run executes the same tuned binary, and nothing is re-timed at run time.
//
//===----------------------------------------------------------------------------------===//

#include "tools/llamac/Driver.h"
#include "tools/llamac/HostToolchain.h"

#include "codegen/CpuEmitter.h"
#include "codegen/CudaEmitter.h"
#include "codegen/EmitSpec.h"
#include "codegen/KernelIR.h"
#include "codegen/Tunables.h"
#include "codegen/TuningDB.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <unistd.h> // environ

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<std::string> output("o", cl::desc("The tuning database to write (entries for "
                                                 "other devices or kernels in it are kept)"),
                                   cl::value_desc("file"), cl::sub(driver::tuneCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> target("target", cl::desc("Code generation target: cpu or cuda"),
                                   cl::init("cpu"), cl::sub(driver::tuneCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> mode("mode", cl::desc("The program to tune: train or infer"),
                                 cl::init("train"), cl::sub(driver::tuneCommand()),
                                 cl::cat(driver::optionCategory()));
static cl::opt<std::string> weights("weights", cl::desc("Inference weights: f32 or int8"),
                                    cl::init("f32"), cl::sub(driver::tuneCommand()),
                                    cl::cat(driver::optionCategory()));
static cl::opt<std::string> space("space",
                                  cl::desc("Search space: full, or quick (a reduced one)"),
                                  cl::init("full"), cl::sub(driver::tuneCommand()),
                                  cl::cat(driver::optionCategory()));
static cl::opt<int> repeats("repeats", cl::desc("Timed runs per variant (median)"),
                            cl::init(10), cl::sub(driver::tuneCommand()),
                            cl::cat(driver::optionCategory()));
static cl::opt<std::string> cache("cache",
                                  cl::desc("Caches before each timed run: cold (flushed, the "
                                           "default) or warm (as left by the previous run)"),
                                  cl::init("cold"), cl::sub(driver::tuneCommand()),
                                  cl::cat(driver::optionCategory()));
static cl::opt<int> threads("threads",
                            cl::desc("Threads, as the program will run (0: all cores)"),
                            cl::init(0), cl::sub(driver::tuneCommand()),
                            cl::cat(driver::optionCategory()));
static cl::opt<std::string> precision(
    "precision",
    cl::desc("Matrix products, as the program will be compiled with: bf16 (mixed "
             "precision; the default for --target cuda), tf32 (--target cuda) or f32 (the "
             "default for --target cpu)"),
    cl::init("bf16"), cl::sub(driver::tuneCommand()), cl::cat(driver::optionCategory()));
static cl::opt<std::string> cxx("cxx", cl::desc("Host C++ compiler"), cl::init(LLAMAC_HOST_CXX),
                                cl::sub(driver::tuneCommand()),
                                cl::cat(driver::optionCategory()));

namespace {

/// One distinct kernel to tune, and its variants (the default first).
struct Candidate {
  const kir::Launch *launch;
  std::string shape;
  std::vector<std::vector<std::pair<std::string, int64_t>>> variants;
};

std::string describe(const std::vector<std::pair<std::string, int64_t>> &choice) {
  std::string s;
  for (const auto &[name, value] : choice)
    s += (s.empty() ? "" : " ") + name + "=" + std::to_string(value);
  return s;
}

/// A buffer as an f32 pointer, whatever it holds: the benchmark fills and compares words.
std::string floatPointer(kir::BufferRef b) {
  b.type = kir::ElemType::F32;
  return kir::emitCpuPointer(b, false);
}

/// inBytes[i] (outBytes[i]): the size of the largest input (output) i of the program's
/// functions, for benchmarks that place argument i of every function in one buffer.
void largestArguments(const kir::Program &program, std::vector<int64_t> &inBytes,
                      std::vector<int64_t> &outBytes) {
  for (const kir::Function &f : program.functions)
    for (auto [sigs, bytes] : {std::make_pair(&f.inputs, &inBytes),
                               std::make_pair(&f.outputs, &outBytes)})
      for (size_t i = 0; i < sigs->size(); ++i) {
        int64_t n = kir::elemBytes((*sigs)[i].type);
        for (int64_t d : (*sigs)[i].shape)
          n *= d;
        bytes->resize(std::max(bytes->size(), i + 1), 0);
        (*bytes)[i] = std::max((*bytes)[i], n);
      }
}

/// The call that fills buffer `b` with small random values: f32 words (int8 weights: random
/// bytes), or bf16 values (random bits would be NaNs and infinities).
std::string fillCall(const kir::BufferRef &b, uint32_t seed) {
  if (b.type == kir::ElemType::BF16)
    return "fillRandom(" + kir::emitCpuPointer(b, false) + ", " + std::to_string(b.elements()) +
           ", " + std::to_string(seed) + ")";
  return "fillRandom(" + floatPointer(b) + ", " + std::to_string((b.bytes() + 3) / 4) + ", " +
         std::to_string(seed) + ")";
}

/// The benchmark program: every variant of every candidate, timed in one process. A variant
/// whose outputs are further than `tolerance` (norm-wise, relative) from the default's loses.
void writeBenchmark(const kir::Program &program, const std::vector<Candidate> &candidates,
                    double tolerance, llvm::raw_ostream &os) {
  kir::emitCpuPreamble(os);
  os << "} // namespace\n\n"
     << "#include <algorithm>\n#include <cmath>\n#include <cstring>\n#include <vector>\n\n"
     << "// Untouched pages stay unallocated: only the buffers a timed launch reads are filled.\n"
     << "static std::byte *region(size_t bytes) {\n"
     << "  return static_cast<std::byte *>(std::calloc((bytes + 63) / 64 * 64 + 64, 1));\n}\n\n"
     << "// Small values, so that exponentials stay finite whatever the buffer holds.\n"
     << "static void fillRandom(float *f, size_t n, uint32_t seed) {\n"
     << "  uint32_t x = seed * 2654435761u + 1;\n"
     << "  for (size_t i = 0; i < n; ++i) {\n"
     << "    x = x * 1664525u + 1013904223u;\n"
     << "    f[i] = (float((x >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.5f;\n"
     << "  }\n}\n\n"
     << "// The same values rounded to bf16.\n"
     << "static void fillRandom(uint16_t *h, size_t n, uint32_t seed) {\n"
     << "  std::vector<float> f(n);\n  fillRandom(f.data(), n, seed);\n"
     << "  cpu::cast(f.data(), int64_t(n), h);\n}\n\n"
     << "static std::vector<float> widened(const uint16_t *h, size_t n) {\n"
     << "  std::vector<float> f(n);\n  cpu::cast(h, int64_t(n), f.data());\n  return f;\n}\n\n"
     << "static void flush() {\n"
     << "  static std::vector<char> junk(64 << 20);\n"
     << "  for (size_t i = 0; i < junk.size(); i += 64)\n    junk[i]++;\n}\n\n"
     << "static bool coldCaches = true;\n\n"
     << "template <class F> static double median(F f, int repeats) {\n"
     << "  f();\n  f();\n  std::vector<double> t;\n"
     << "  for (int r = 0; r < repeats; ++r) {\n    if (coldCaches)\n      flush();\n"
     << "    rt::Timer timer;\n    f();\n"
     << "    t.push_back(timer.seconds());\n  }\n"
     << "  std::sort(t.begin(), t.end());\n  return t[t.size() / 2];\n}\n\n"
     << "int main(int argc, char **argv) {\n"
     << "  int repeats = argc > 1 ? std::atoi(argv[1]) : 10;\n"
     << "  coldCaches = !(argc > 2 && std::strcmp(argv[2], \"warm\") == 0);\n"
     << "  rt::Context ctx;\n"
     << "  std::byte *A = region(" << program.arenaBytes() << ");\n"
     << "  std::byte *P = region(" << program.paramBytes << ");\n"
     << "  std::byte *C = region(" << program.cacheBytes << ");\n";
  // Arguments: argument i as large as the largest argument i of any function.
  std::vector<int64_t> inBytes, outBytes;
  largestArguments(program, inBytes, outBytes);
  os << "  void *in[" << std::max<size_t>(inBytes.size(), 1) << "], *out["
     << std::max<size_t>(outBytes.size(), 1) << "];\n";
  for (size_t i = 0; i < inBytes.size(); ++i)
    os << "  in[" << i << "] = region(" << inBytes[i] << ");\n";
  for (size_t i = 0; i < outBytes.size(); ++i)
    os << "  out[" << i << "] = region(" << outBytes[i] << ");\n";
  os << "  (void)C;\n";
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &cand = candidates[c];
    const kir::Launch &base = *cand.launch;
    os << "  {\n    // " << kir::kernelName(base.kind) << " " << cand.shape << "\n";
    for (size_t i = 0; i < base.inputs.size(); ++i) {
      const kir::BufferRef &b = base.inputs[i];
      if (b.type != kir::ElemType::F32 && b.type != kir::ElemType::I8 &&
          b.type != kir::ElemType::BF16)
        continue;
      // int8 weights: random bytes; their scales, small floats.
      os << "    " << fillCall(b, uint32_t(c * 16 + i + 1)) << ";\n";
      if (b.scaleOffset >= 0)
        os << "    fillRandom(at<float>(P, " << b.scaleOffset << "), " << b.shape[0] << ", "
           << c * 16 + i + 9 << ");\n";
    }
    // A gradient kernel needs the forward's output and row statistics of these inputs.
    if (base.kind == kir::KernelKind::FlashAttentionGrad) {
      kir::Launch fwd = base;
      fwd.kind = kir::KernelKind::FlashAttention;
      fwd.inputs = {base.inputs[0], base.inputs[1], base.inputs[2]};
      fwd.outputs = {base.inputs[3], base.inputs[4]};
      os << "    " << kir::emitCpuCall(fwd) << ";\n";
    }
    // Snapshot the outputs of the default variant.
    os << "    std::vector<std::vector<float>> reference;\n";
    auto outputsCode = [&](const char *action) {
      std::string s;
      for (size_t o = 0; o < base.outputs.size(); ++o) {
        const kir::BufferRef &b = base.outputs[o];
        // bf16 outputs are compared as the f32 values they hold.
        std::string values = b.type == kir::ElemType::BF16
                                 ? "widened(" + kir::emitCpuPointer(b, false) + ", " +
                                       std::to_string(b.elements()) + ").data()"
                                 : floatPointer(b);
        int64_t n = b.type == kir::ElemType::BF16 ? b.elements() : b.bytes() / 4;
        s += "      " + std::string(action) + "(" + values + ", " + std::to_string(n) + ", " +
             std::to_string(o) + ");\n";
      }
      return s;
    };
    for (size_t v = 0; v < cand.variants.size(); ++v) {
      kir::Launch l = base;
      kir::applyChoice(l, cand.variants[v]);
      // The outputs are reset before the checked run: an accumulating GEMM adds to them,
      // and every variant must start from the same values as the default.
      os << "    {\n      auto run = [&] { " << kir::emitCpuCall(l) << "; };\n";
      for (size_t o = 0; o < base.outputs.size(); ++o)
        os << "      " << fillCall(base.outputs[o], uint32_t(1000 + o)) << ";\n";
      os << "      run();\n"
         << "      double worst = 0, scale = 0;\n"
         << "      auto keep = [&](const float *p, size_t n, size_t) {\n"
         << "        reference.emplace_back(p, p + n);\n      };\n"
         << "      auto check = [&](const float *p, size_t n, size_t o) {\n"
         << "        for (size_t i = 0; i < n; ++i) {\n"
         << "          worst = std::max(worst, double(std::fabs(p[i] - reference[o][i])));\n"
         << "          scale = std::max(scale, double(std::fabs(reference[o][i])));\n"
         << "          if (std::isnan(p[i]) != std::isnan(reference[o][i])) worst = INFINITY;\n"
         << "        }\n      };\n"
         << (v == 0 ? outputsCode("keep") : outputsCode("check"))
         << "      double t = median(run, repeats);\n"
         << "      double rel = scale > 0 ? worst / scale : worst;\n"
         << "      std::printf(\"RESULT " << c << " " << v << " %.9g %.3g\\n\", t, rel);\n"
         << "      std::fprintf(stderr, \"  " << kir::kernelName(base.kind) << " [" << c + 1
         << "/" << candidates.size() << "] " << describe(cand.variants[v])
         << ": %.3f ms%s\\n\", t * 1e3, rel <= " << kir::lit(tolerance)
         << " ? \"\" : \" (differs from the default: rejected)\");\n"
         << "    }\n";
  }
    os << "  }\n";
  }
  os << "  return 0;\n}\n";
}

/// The fixed part of the CUDA benchmark: the device and execution state as a generated
/// program opens them, device buffers, random fills, the check of a variant's outputs and
/// its timing.
constexpr const char *kCudaBenchmarkPreamble = R"cuda(#include "runtime/cuda/CudaKernels.h"
#include "runtime/cuda/CudaRuntime.h"
#include "runtime/cuda/FlashAttention.cuh"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace llamac;

namespace {

template <class T> T *at(std::byte *base, int64_t offset) {
  return reinterpret_cast<T *>(base + offset);
}

// The first line on stderr that is not progress: `llamac tune` reports it.
[[noreturn]] void fail(const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s\n", message.c_str());
  std::exit(1);
}

// What the emitted calls use of the execution state (X.stream, X.gemm, X.blas), keeping
// cuBLASLt's status here so that a variant that cannot run is reported, not fatal.
struct Exec {
  cuda::ExecState &state;
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  cudaStream_t stream(int i) const { return state.stream(i); }
  cuda::GemmEngine &gemm() { return state.gemm(); }
  void blas(cublasStatus_t s) {
    if (s != CUBLAS_STATUS_SUCCESS && status == CUBLAS_STATUS_SUCCESS)
      status = s;
  }
  // Waits for the launches so far; what went wrong in them, or "".
  std::string check() {
    cudaError_t e = cudaStreamSynchronize(state.stream(0));
    if (e == cudaSuccess)
      e = cudaGetLastError();
    if (e != cudaSuccess)
      return std::string("CUDA error '") + cudaGetErrorString(e) + "'";
    if (status != CUBLAS_STATUS_SUCCESS) {
      cublasStatus_t s = status;
      status = CUBLAS_STATUS_SUCCESS;
      return std::string("cuBLASLt: ") + cuda::statusName(s);
    }
    return "";
  }
};

// Zeroed device memory (as the program's regions), 256-byte aligned. The memset runs on the
// legacy default stream, which the execution state's non-blocking streams do not wait for.
std::byte *region(size_t bytes) {
  void *p = nullptr;
  size_t rounded = (bytes + 255) / 256 * 256 + 256;
  if (cudaError_t e = cudaMalloc(&p, rounded); e != cudaSuccess)
    fail("cannot allocate " + std::to_string(rounded) + " bytes on the GPU: " +
         cudaGetErrorString(e));
  cudaMemset(p, 0, rounded);
  cudaDeviceSynchronize();
  return static_cast<std::byte *>(p);
}

// Small values, so that exponentials stay finite whatever the buffer holds: a hash of the
// index and the seed, on the device.
__device__ float randomValue(int64_t i, uint32_t seed) {
  uint32_t x = uint32_t(i) * 2654435761u ^ (seed * 1664525u + 1013904223u);
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  x ^= x >> 12;
  x *= 0x297a2d39u;
  x ^= x >> 15;
  return (float((x >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.5f;
}

// f32 buffers (and other 4-byte words) get the values, bf16 buffers (uint16_t) the values
// rounded to bf16 (to nearest even; they are finite): random bits would be NaNs and infs.
__global__ void fillRandomKernel(float *f, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    f[i] = randomValue(i, seed);
}

__global__ void fillRandomKernel(uint16_t *h, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t bits = __float_as_uint(randomValue(i, seed));
    h[i] = uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
  }
}

template <class T> void fillRandom(T *f, int64_t n, uint32_t seed, cudaStream_t stream) {
  int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, 4096));
  fillRandomKernel<<<unsigned(blocks), 256, 0, stream>>>(f, n, seed);
}

// bf16 is held as uint16_t: the upper half of an f32's bits.
float widenBf16(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// One output of a launch: `count` 4-byte words (f32 or whatever it holds, compared as f32)
// or, when `bf16`, `count` bf16 values, compared after widening to f32.
struct Output {
  void *data;
  int64_t count;
  bool bf16 = false;
};

// Written before each timed run with cold caches: more than any GPU's L2 (50 MiB on an H100).
constexpr size_t kFlushBytes = size_t(256) << 20;

int repeats = 10;
bool coldCaches = true;
double tolerance = 1e-4;
void *flushBuffer = nullptr;
cudaEvent_t startEvent, stopEvent;

// The median of `repeats` runs timed with CUDA events, after two warm-up runs; with cold
// caches, each run follows a memset larger than the L2 cache.
template <class F> double median(Exec &X, const F &run) {
  cudaStream_t stream = X.stream(0);
  run();
  run();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    if (coldCaches)
      cudaMemsetAsync(flushBuffer, r & 0xff, kFlushBytes, stream);
    cudaEventRecord(startEvent, stream);
    run();
    cudaEventRecord(stopEvent, stream);
    cudaEventSynchronize(stopEvent);
    float ms = 0;
    cudaEventElapsedTime(&ms, startEvent, stopEvent);
    t.push_back(ms / 1e3);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// One variant of candidate c: its outputs reset (an accumulating GEMM adds to them), one
// run whose outputs are compared with the default's (variant 0 records them), then the
// median time. RESULT on stdout, progress on stderr. The default must run; another variant
// that fails is reported and left without a result.
//
// bf16 outputs are compared widened to f32. Two variants whose f32 results differ by a
// mere summation order may still round them to neighbouring bf16 values, one bf16 ulp of
// the element apart (2^-7 of it at most), so for them the difference beyond one ulp is what
// counts: the f32 disagreement, which the tolerance bounds as for f32 outputs.
template <class F>
void measure(Exec &X, int c, int v, const char *label, const F &run,
             const std::vector<Output> &outputs, std::vector<std::vector<float>> &reference) {
  cudaStream_t stream = X.stream(0);
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o].bf16)
      fillRandom(static_cast<uint16_t *>(outputs[o].data), outputs[o].count, uint32_t(1000 + o),
                 stream);
    else
      fillRandom(static_cast<float *>(outputs[o].data), outputs[o].count, uint32_t(1000 + o),
                 stream);
  }
  run();
  std::string why = X.check();
  double worst = 0, scale = 0;
  for (size_t o = 0; o < outputs.size() && why.empty(); ++o) {
    std::vector<float> host(size_t(outputs[o].count));
    std::vector<uint16_t> bits(outputs[o].bf16 ? host.size() : 0);
    cudaError_t e = outputs[o].bf16
                        ? cudaMemcpyAsync(bits.data(), outputs[o].data,
                                          bits.size() * sizeof(uint16_t),
                                          cudaMemcpyDeviceToHost, stream)
                        : cudaMemcpyAsync(host.data(), outputs[o].data,
                                          host.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                          stream);
    if (e == cudaSuccess)
      e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) {
      why = std::string("CUDA error '") + cudaGetErrorString(e) + "'";
      break;
    }
    for (size_t i = 0; i < bits.size(); ++i)
      host[i] = widenBf16(bits[i]);
    if (v == 0) {
      reference.push_back(std::move(host));
      continue;
    }
    const std::vector<float> &ref = reference[o];
    for (size_t i = 0; i < host.size(); ++i) {
      double d = std::fabs(host[i] - ref[i]);
      if (outputs[o].bf16) {
        // An ulp of bf16 (8 significant bits) at m 2^e, m in [0.5, 1): 2^(e - 8).
        int e2 = 0;
        std::frexp(std::max(std::fabs(host[i]), std::fabs(ref[i])), &e2);
        d = std::max(0.0, d - std::ldexp(1.0, e2 - 8));
      }
      worst = std::max(worst, d);
      scale = std::max(scale, double(std::fabs(ref[i])));
      if (std::isnan(host[i]) != std::isnan(ref[i]))
        worst = INFINITY;
    }
  }
  double t = why.empty() ? median(X, run) : 0;
  if (why.empty())
    why = X.check();
  if (!why.empty()) {
    if (v == 0)
      fail(std::string(label) + " (the default) failed: " + why);
    std::fprintf(stderr, "  %s: failed (%s)\n", label, why.c_str());
    return;
  }
  double rel = scale > 0 ? worst / scale : worst;
  std::printf("RESULT %d %d %.9g %.3g\n", c, v, t, rel);
  std::fprintf(stderr, "  %s: %.3f ms%s\n", label, t * 1e3,
               rel <= tolerance ? "" : " (differs from the default: rejected)");
}

} // namespace

int main(int argc, char **argv) {
  repeats = argc > 1 ? std::atoi(argv[1]) : 10;
  coldCaches = !(argc > 2 && std::strcmp(argv[2], "warm") == 0);
  tolerance = argc > 3 ? std::atof(argv[3]) : 1e-4;
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0)
    fail(std::string("no CUDA device: ") +
         (e != cudaSuccess ? cudaGetErrorString(e) : "the CUDA runtime finds none"));
  // The device and execution state as a generated program opens them (LLAMAC_CUDA_DEVICE
  // picks the GPU).
  std::string error;
  std::unique_ptr<rt::Device> device = cuda::createCudaDevice(0, &error);
  if (!device)
    fail("cannot open the CUDA device: " + error);
  Exec X{*static_cast<cuda::ExecState *>(device->backend())};
  int ordinal = 0, runtime = 0;
  cudaDeviceProp prop{};
  cudaGetDevice(&ordinal);
  cudaGetDeviceProperties(&prop, ordinal);
  cudaRuntimeGetVersion(&runtime);
  std::printf("DEVICE %s sm_%d%d|%d %zu\n", prop.name, prop.major, prop.minor, runtime,
              size_t(cublasLtGetVersion()));
  std::fflush(stdout);
  cudaEventCreate(&startEvent);
  cudaEventCreate(&stopEvent);
  if (coldCaches)
    flushBuffer = region(kFlushBytes);
  cudaStream_t stream = X.stream(0);
  (void)stream;
)cuda";

/// The CUDA benchmark: writeBenchmark's, on the GPU that a generated program opens. The
/// launches are the CUDA emitter's calls (kir::emitCudaCall) on stream 0, their arguments in
/// one staging buffer (argument i of every function at one offset), and of the arena,
/// parameter and cache regions only as much as the timed launches reach is allocated.
void writeCudaBenchmark(const kir::Program &program, const std::vector<Candidate> &candidates,
                        const std::string &products, llvm::raw_ostream &os) {
  std::vector<int64_t> inBytes, outBytes, inOffsets, outOffsets;
  largestArguments(program, inBytes, outBytes);
  int64_t staging = 0;
  for (auto [bytes, offsets] :
       {std::make_pair(&inBytes, &inOffsets), std::make_pair(&outBytes, &outOffsets)})
    for (int64_t n : *bytes) {
      offsets->push_back(staging);
      staging += (n + 255) / 256 * 256;
    }
  int64_t extent[3] = {0, 0, 0}; // Arena, Param, Cache
  for (const Candidate &cand : candidates)
    for (const auto *buffers : {&cand.launch->inputs, &cand.launch->outputs})
      for (const kir::BufferRef &b : *buffers) {
        int region = b.space == kir::Space::Arena   ? 0
                     : b.space == kir::Space::Param ? 1
                     : b.space == kir::Space::Cache ? 2
                                                    : -1;
        if (region >= 0)
          extent[region] = std::max(extent[region], b.offset + b.bytes());
      }
  // A buffer as a writable pointer, in the names the emitted calls use: uint16_t for bf16,
  // float for anything else (the benchmark fills and compares 4-byte words).
  auto pointer = [&](const kir::BufferRef &b) {
    const char *base = "A";
    int64_t offset = b.offset;
    switch (b.space) {
    case kir::Space::Arena:
      break;
    case kir::Space::Param:
      base = "P";
      break;
    case kir::Space::Cache:
      base = "C";
      break;
    case kir::Space::Input:
      base = "S";
      offset += inOffsets[size_t(b.index)];
      break;
    case kir::Space::Output:
      base = "S";
      offset += outOffsets[size_t(b.index)];
      break;
    }
    const char *type = b.type == kir::ElemType::BF16 ? "uint16_t" : "float";
    return "at<" + std::string(type) + ">(" + std::string(base) + ", " +
           std::to_string(offset) + ")";
  };
  auto call = [&](kir::Launch l) {
    l.stream = 0; // timed on stream 0, between its events
    return kir::emitCudaCall(l, inOffsets, outOffsets, products);
  };

  os << "// Generated by llamac tune --target cuda for @" << program.modelName << " ("
     << program.mode << "): every variant of every tunable launch, timed on the GPU.\n"
     << kCudaBenchmarkPreamble;
  std::string enumerator = products == "f32" ? "F32" : products == "tf32" ? "TF32" : "BF16";
  os << "  X.gemm().setPrecision(cuda::Precision::" << enumerator << ");\n"
     << "  std::byte *A = region(" << extent[0] << ");\n"
     << "  std::byte *P = region(" << extent[1] << ");\n"
     << "  std::byte *C = region(" << extent[2] << ");\n"
     << "  std::byte *S = region(" << staging << ");\n"
     << "  (void)A;\n  (void)P;\n  (void)C;\n  (void)S;\n";
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &cand = candidates[c];
    const kir::Launch &base = *cand.launch;
    std::string where = std::string(kir::kernelName(base.kind)) + " [" + std::to_string(c + 1) +
                        "/" + std::to_string(candidates.size()) + "]";
    os << "  {\n    // " << kir::kernelName(base.kind) << " " << cand.shape << "\n";
    // f32 and bf16 inputs get small random values (fillRandom's overload of the pointer).
    for (size_t i = 0; i < base.inputs.size(); ++i)
      if (base.inputs[i].type == kir::ElemType::F32 || base.inputs[i].type == kir::ElemType::BF16)
        os << "    fillRandom(" << pointer(base.inputs[i]) << ", " << base.inputs[i].elements()
           << ", " << c * 16 + i + 1 << ", stream);\n";
    // A gradient kernel needs the forward's output and row statistics of these inputs.
    if (base.kind == kir::KernelKind::FlashAttentionGrad) {
      kir::Launch fwd = base;
      fwd.kind = kir::KernelKind::FlashAttention;
      fwd.inputs = {base.inputs[0], base.inputs[1], base.inputs[2]};
      fwd.outputs = {base.inputs[3], base.inputs[4]};
      os << "    " << call(fwd) << ";\n"
         << "    if (std::string why = X.check(); !why.empty())\n"
         << "      fail(\"the forward of " << where << " failed: \" + why);\n";
    }
    os << "    std::vector<std::vector<float>> reference;\n"
       << "    const std::vector<Output> outputs = {";
    for (size_t o = 0; o < base.outputs.size(); ++o) {
      const kir::BufferRef &b = base.outputs[o];
      os << (o ? ", " : "") << "{" << pointer(b) << ", ";
      if (b.type == kir::ElemType::BF16)
        os << b.elements() << ", true}";
      else
        os << b.bytes() / 4 << "}";
    }
    os << "};\n";
    bool gemm = base.kind == kir::KernelKind::GemmNT || base.kind == kir::KernelKind::GemmNN ||
                base.kind == kir::KernelKind::GemmTN;
    for (size_t v = 0; v < cand.variants.size(); ++v) {
      kir::Launch l = base;
      kir::applyChoice(l, cand.variants[v]);
      std::string label = where + " " + describe(cand.variants[v]);
      os << "    // " << describe(cand.variants[v]) << "\n";
      // cuBLASLt may offer fewer algorithms for this shape than the tunable's values: the
      // program would fall back to the first, so an index past the last is no variant.
      if (gemm && v > 0) {
        const char *op = base.kind == kir::KernelKind::GemmNT   ? "NT"
                         : base.kind == kir::KernelKind::GemmNN ? "NN"
                                                                : "TN";
        int64_t algo = l.intAttr("algo");
        os << "    if (int n = X.gemm().candidates(cuda::GemmEngine::Op::" << op << ", "
           << l.intAttr("M") << ", " << l.intAttr("N") << ", " << l.intAttr("K") << ", "
           << (l.intAttr("accumulate") ? "true" : "false") << ", " << algo + 1
           << (base.inputs[0].type == kir::ElemType::BF16 ? ", cuda::DataType::BF16" : "")
           << "); n <= " << algo << ")\n"
           << "      std::fprintf(stderr, \"  " << label
           << ": unavailable (cuBLASLt offers %d algorithms for this shape)\\n\", n);\n"
           << "    else\n  ";
      }
      os << "    measure(X, " << c << ", " << v << ", \"" << label << "\", [&] { " << call(l)
         << "; }, outputs, reference);\n";
    }
    os << "  }\n";
  }
  os << "  return 0;\n}\n";
}

/// Runs `argv` with stdout into the file `out` and stderr read as it comes: progress lines
/// (indented) are passed on at once, and the first other line, the benchmark's reason when
/// it fails, is returned in `firstError` (later ones are passed on). Returns the exit
/// status, -1 when the program cannot be started (`message` says why), -2 when it crashed.
int runCapturingErrors(StringRef exe, ArrayRef<StringRef> argv, StringRef out,
                       std::string &firstError, std::string &message) {
  llvm::SmallString<128> errPath;
  if (llvm::sys::fs::createTemporaryFile("llamac-tune", "err", errPath)) {
    message = "cannot create a temporary file";
    return -1;
  }
  std::optional<StringRef> redirects[] = {std::nullopt, out, StringRef(errPath)};
  bool failed = false;
  llvm::sys::ProcessInfo process =
      llvm::sys::ExecuteNoWait(exe, argv, std::nullopt, redirects, 0, &message, &failed);
  int fd = failed ? -1 : ::open(errPath.c_str(), O_RDONLY);
  std::string pending;
  auto forward = [&] {
    char buf[4096];
    for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;)
      pending.append(buf, size_t(n));
    for (size_t eol; (eol = pending.find('\n')) != std::string::npos;
         pending.erase(0, eol + 1)) {
      std::string line = pending.substr(0, eol);
      if (StringRef(line).starts_with("  ") || !firstError.empty())
        llvm::errs() << line << "\n";
      else
        firstError = line;
    }
  };
  int rc = -1;
  while (!failed) {
    llvm::sys::ProcessInfo done = llvm::sys::Wait(process, 0, &message, nullptr, true);
    forward();
    if (done.Pid != 0) {
      rc = done.ReturnCode;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!pending.empty()) {
    pending += "\n";
    forward();
  }
  if (fd >= 0)
    ::close(fd);
  llvm::sys::fs::remove(errPath);
  return rc;
}

/// The key of the GPU the CUDA benchmark ran on, from its first line: "DEVICE <name>
/// sm_<major><minor>|<runtime version> <cuBLASLt version>".
std::optional<tune::DeviceKey> benchmarkDevice(StringRef line) {
  if (!line.consume_front("DEVICE "))
    return std::nullopt;
  auto [left, right] = line.rsplit('|');
  auto [name, arch] = left.rsplit(' ');
  int runtime = 0;
  unsigned long long lt = 0;
  auto [runtimeText, ltText] = right.trim().split(' ');
  // sm_<major><minor>: the minor version is the last digit (sm_90, sm_100).
  if (!arch.consume_front("sm_") || arch.size() < 2 ||
      arch.find_first_not_of("0123456789") != StringRef::npos ||
      runtimeText.getAsInteger(10, runtime) || ltText.trim().getAsInteger(10, lt))
    return std::nullopt;
  return tune::cudaDevice(name.str(), std::stoi(arch.drop_back().str()), arch.back() - '0',
                          runtime, lt);
}

} // namespace

int llamac::driver::runTune() {
  ModelArgs args = modelArgs();
  if (output.empty())
    return error("llamac tune needs -o <tuning database>");
  bool cuda = target == "cuda";
  if (target != "cpu" && (!cuda || StringRef(LLAMAC_NVCC).empty()))
    return error("--target '" + target + "' is not available; this build tunes: cpu" +
                 (StringRef(LLAMAC_NVCC).empty() ? "" : ", cuda"));
  if (mode != "train" && mode != "infer")
    return error("--mode must be train or infer, not '" + mode + "'");
  if (space != "full" && space != "quick")
    return error("--space must be full or quick, not '" + space + "'");
  if (std::string why =
          targetOptionsError(target, weights, precision, precision.getNumOccurrences() > 0);
      !why.empty())
    return error(why);
  if (std::string why =
          precisionModeError(target, mode, precision, precision.getNumOccurrences() > 0);
      !why.empty())
    return error(why);
  if (cache != "cold" && cache != "warm")
    return error("--cache must be cold or warm, not '" + cache + "'");
  if (repeats < 1 || threads < 0 || args.batch <= 0 || args.seq < 0)
    return error("--repeats must be >= 1, --threads >= 0, --batch > 0 and --seq >= 0");
  // How far (norm-wise, relative) a variant's outputs may be from the default's and still
  // win. f32 products differ only in summation order; bf16 and tf32 ones round the inputs to
  // 8 and 10 bits of mantissa, at places that differ between cuBLASLt's algorithms and
  // between attention tiles.
  // bf16 results are rounded to 8 bits besides (mixed precision, on either target).
  const std::string products =
      effectivePrecision(target, precision, precision.getNumOccurrences() > 0);
  const double tolerance = products == "f32" ? 1e-4 : products == "tf32" ? 5e-3 : 2e-2;

  // An existing database must be readable: its other entries are kept.
  tune::Database db;
  std::string err;
  if (!db.loadIfExists(output, &err))
    return error(err);

  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp declared = selectModelForSeq(*module, args);
  if (!declared)
    return 1;
  int64_t context = declared.getConfig().getMaxSeqLen();
  BuildSettings settings;
  settings.mode = mode;
  settings.target = target;
  settings.batch = mode == "infer" ? 1 : args.batch;
  settings.seq = args.seq ? args.seq : (mode == "infer" ? std::min<int64_t>(context, 64) : context);
  settings.weights = weights;
  settings.precision = products;
  kir::Program program;
  if (!buildKernelProgram(*module, declared.getSymName(), settings, program))
    return 1;

  // The distinct tunable kernels, in order of first launch.
  std::vector<Candidate> candidates;
  std::map<std::pair<int, std::string>, size_t> seen;
  for (const kir::Function &f : program.functions)
    for (const kir::Launch &l : f.launches) {
      if (kir::tunablesOf(l.kind, target).empty())
        continue;
      std::string shape = kir::shapeKey(l, target);
      if (!seen.emplace(std::make_pair(int(l.kind), shape), candidates.size()).second)
        continue;
      candidates.push_back({&l, shape, kir::variantsOf(l, target, space == "quick")});
    }
  // The CPU is this machine's; the GPU is named by the benchmark that runs on it.
  int nthreads = threads ? threads : int(std::thread::hardware_concurrency());
  tune::DeviceKey device;
  if (cuda) {
    llvm::outs() << "tuning @" << declared.getSymName() << " (" << mode << ", " << target
                 << ", " << products << " products) on the GPU: " << candidates.size()
                 << " tunable kernels\n";
  } else {
    device = tune::currentCpuDevice(nthreads);
    llvm::outs() << "tuning @" << declared.getSymName() << " (" << mode << ", " << target
                 << ") on " << device.description << " [" << device.libraries << "]: "
                 << candidates.size() << " tunable kernels\n";
  }
  size_t variantsTotal = 0;
  for (const Candidate &c : candidates)
    variantsTotal += c.variants.size();

  std::vector<std::vector<std::pair<double, double>>> results(candidates.size());
  if (!candidates.empty()) {
    llvm::SmallString<128> exe, out;
    if (llvm::sys::fs::createTemporaryFile("llamac-tune", "exe", exe) ||
        llvm::sys::fs::createTemporaryFile("llamac-tune", "txt", out))
      return error("cannot create temporary files");
    llvm::outs() << "  " << variantsTotal << " variants; building the benchmark\n";
    llvm::outs().flush();
    std::string rep = std::to_string(int(repeats));
    std::string message;
    int rc = 0;
    if (cuda) {
      if (int built = cudaCompile(
              [&](llvm::raw_ostream &os) {
                writeCudaBenchmark(program, candidates, products, os);
              },
              exe.str().str(), false)) {
        llvm::sys::fs::remove(out);
        return built;
      }
      std::string tol = std::to_string(tolerance);
      StringRef argv[] = {exe.str(), rep, cache, tol};
      llvm::outs() << "  timing (kernel, variant, median time):\n";
      llvm::outs().flush();
      std::string reason;
      rc = runCapturingErrors(exe, argv, out, reason, message);
      // The benchmark's own reason ("no CUDA device: ...") says more than its exit status.
      if (rc != 0 && !reason.empty()) {
        llvm::sys::fs::remove(exe);
        llvm::sys::fs::remove(out);
        StringRef why(reason);
        why.consume_front("error: "); // the runtime's own failures
        return error("the tuning benchmark failed: " + why);
      }
      if (rc == 0 && !reason.empty())
        llvm::errs() << reason << "\n";
    } else {
      if (int built = hostCompile(
              [&](llvm::raw_ostream &os) { writeBenchmark(program, candidates, tolerance, os); },
              exe.str().str(), cxx, false))
        return built;
      std::vector<std::string> env;
      for (char **e = environ; *e; ++e)
        if (!StringRef(*e).starts_with("OMP_NUM_THREADS="))
          env.push_back(*e);
      env.push_back("OMP_NUM_THREADS=" + std::to_string(nthreads));
      SmallVector<StringRef> envRefs(env.begin(), env.end());
      StringRef argv[] = {exe.str(), rep, cache};
      std::optional<StringRef> redirects[] = {std::nullopt, StringRef(out), std::nullopt};
      llvm::outs() << "  timing (kernel, variant, median time):\n";
      llvm::outs().flush();
      rc = llvm::sys::ExecuteAndWait(exe, argv, ArrayRef<StringRef>(envRefs), redirects, 0, 0,
                                     &message);
    }
    llvm::sys::fs::remove(exe);
    auto text = llvm::MemoryBuffer::getFile(out);
    llvm::sys::fs::remove(out);
    if (rc != 0 || !text)
      return error("the tuning benchmark failed (exit " + Twine(rc) +
                   (message.empty() ? "" : ", " + message) + ")");
    std::istringstream lines((*text)->getBuffer().str());
    std::string word;
    for (std::string line; std::getline(lines, line);) {
      if (cuda && device.description.empty())
        if (std::optional<tune::DeviceKey> gpu = benchmarkDevice(line))
          device = *gpu;
      std::istringstream in(line);
      size_t c, v;
      double t, rel;
      if (!(in >> word >> c >> v >> t >> rel) || word != "RESULT" || c >= candidates.size())
        continue;
      results[c].resize(candidates[c].variants.size(), {-1, 0});
      if (v < results[c].size())
        results[c][v] = {t, rel};
    }
    if (cuda && device.description.empty())
      return error("the tuning benchmark did not name its GPU (no DEVICE line)");
    if (cuda)
      llvm::outs() << "  on " << device.description << " [" << device.libraries << "]\n";
  }

  // Winners: the fastest variant whose outputs agree with the default's.
  llvm::outs() << llvm::format("\n%-22s %-44s %-28s %10s %10s %8s\n", "kernel", "shape",
                               "best", "default ms", "best ms", "speedup");
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &cand = candidates[c];
    if (results[c].empty() || results[c][0].first < 0)
      return error("the tuning benchmark gave no time for the default of " +
                   std::string(kir::kernelName(cand.launch->kind)) + " " + cand.shape);
    size_t best = 0;
    int timed = 0;
    for (size_t v = 0; v < results[c].size(); ++v) {
      // Variants without a time: cuBLASLt offered fewer algorithms, or the variant failed.
      if (results[c][v].first < 0)
        continue;
      ++timed;
      if (results[c][v].second <= tolerance && results[c][v].first < results[c][best].first)
        best = v;
    }
    tune::Entry entry;
    entry.kernel = kir::kernelName(cand.launch->kind);
    entry.shape = cand.shape;
    // Entries are per precision of the products (TuningDB.h: Entry::dtype).
    entry.dtype = products;
    for (const auto &[name, value] : cand.variants[best])
      entry.choices.push_back({name, value});
    entry.bestSeconds = results[c][best].first;
    entry.defaultSeconds = results[c][0].first;
    entry.variants = timed;
    db.put(device, entry);
    std::string shape = cand.shape.size() > 44 ? cand.shape.substr(0, 41) + "..." : cand.shape;
    llvm::outs() << llvm::format("%-22s %-44s %-28s %10.3f %10.3f %7.2fx\n",
                                 entry.kernel.c_str(), shape.c_str(),
                                 describe(cand.variants[best]).c_str(),
                                 entry.defaultSeconds * 1e3, entry.bestSeconds * 1e3,
                                 entry.defaultSeconds / entry.bestSeconds);
  }
  if (!db.save(output, &err))
    return error(err);
  llvm::outs() << "\nwrote " << output << " (" << candidates.size() << " entries for this "
               << "device)\n";
  return 0;
}
