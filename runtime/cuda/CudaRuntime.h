//===- CudaRuntime.h - the CUDA device and what generated CUDA code calls -*- C++ -*-===//
//
// The CUDA backend of the runtime (runtime/Device.h), and the state generated CUDA
// programs run with (codegen/CudaEmitter.cpp writes the calls):
//
//   createCudaDevice  opens GPU 0 (LLAMAC_CUDA_DEVICE picks another): regions come from
//                     cudaMalloc and are zeroed; the host reaches them only through copies,
//                     so the drivers keep a host copy of the parameters (TrainMain.cpp).
//   ExecState         the streams (0: compute, 1: communication, ...), events, the cuBLASLt
//                     engine, the staging buffer where an entry function's host inputs and
//                     outputs pass through, the device words where validating kernels
//                     report bad ids, and the CUDA graphs of entry functions.
//
// Errors name the launch: "CUDA error 'an illegal memory access' after launch 12
// (flash_attention, from llama.attention at model.mlir:30:7) of @train_grad". Kernels run
// asynchronously, so an error that a kernel causes surfaces at a later check;
// LLAMAC_CUDA_SYNC=1 synchronises after every launch to pin it on the right one.
// LLAMAC_CUDA_GRAPHS=1 captures each entry function in a CUDA graph on its first call and
// replays it afterwards (profiling turns it off).
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CUDA_CUDARUNTIME_H
#define LLAMAC_RUNTIME_CUDA_CUDARUNTIME_H

#include "runtime/Device.h"
#include "runtime/Program.h"
#include "runtime/cuda/CudaGemm.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace llamac::cuda {

constexpr int kMaxStreams = 4;

/// Where a launch came from, for error messages.
struct LaunchSite {
  const char *function; ///< the entry function
  int index;            ///< the launch's position in it
  const char *kernel;   ///< kernel kind
  const char *origin;   ///< the op and location it was lowered from
};

[[noreturn]] void fail(const LaunchSite &site, const std::string &what);

class ExecState {
public:
  ExecState() = default;
  ExecState(const ExecState &) = delete;
  ExecState &operator=(const ExecState &) = delete;
  ~ExecState();

  bool init(int device, std::string *error);

  cudaStream_t stream(int i) const { return streams_[i < kMaxStreams ? i : 0]; }
  /// Event `i` of the current function, created on first use.
  cudaEvent_t event(int i);
  GemmEngine &gemm() { return gemm_; }

  /// The staging buffer, at least `bytes` (grown before a function's launches run).
  std::byte *staging(size_t bytes);
  /// `n` device int64 words set to -1 (on stream 0) for validating kernels to report in.
  int64_t *errorWords(int n);

  /// Before and after each launch: checks for a launch error (and, when profiling or with
  /// LLAMAC_CUDA_SYNC=1, waits for the kernel and times it into `profiler`).
  void before(rt::Profiler *profiler);
  void after(const LaunchSite &site, rt::Profiler *profiler);
  /// The status of a cuBLASLt call, checked by after().
  void blas(cublasStatus_t status) {
    if (status != CUBLAS_STATUS_SUCCESS && blasStatus_ == CUBLAS_STATUS_SUCCESS)
      blasStatus_ = status;
  }

  /// Runs `body` (the launches of entry function `name`) directly, or through the CUDA
  /// graph captured from it on stream 0 when graphs are on.
  void run(const char *name, rt::Profiler *profiler, const std::function<void()> &body);

  /// Host-to-device copy of an input into staging, device-to-host copy of an output (both
  /// on stream 0; copyOut waits for the copy).
  void copyIn(std::byte *dst, const void *src, size_t bytes, const char *function);
  void copyOut(void *dst, const std::byte *src, size_t bytes, const char *function);
  /// Waits for stream 0 and fails, naming the launch, if a validating kernel stored a bad
  /// index in words[i] (sites[i] says which launch wrote word i).
  void checkWords(const int64_t *words, const LaunchSite *sites, int n, const char *const *what);
  /// Waits for stream 0 (the outputs have arrived) and fails if the device reports an error.
  void finish(const char *function);

private:
  cudaStream_t streams_[kMaxStreams] = {};
  std::vector<cudaEvent_t> events_;
  GemmEngine gemm_;
  void *staging_ = nullptr;
  size_t stagingBytes_ = 0;
  int64_t *words_ = nullptr;
  int wordsCount_ = 0;
  bool syncEach_ = false, graphs_ = false;
  std::map<std::string, cudaGraphExec_t> graphExecs_;
  std::map<std::string, int> eagerRuns_; ///< calls run directly, per entry function
  uint64_t graphScratch_ = 0; ///< scratchGeneration() when the graphs were captured
  cublasStatus_t blasStatus_ = CUBLAS_STATUS_SUCCESS;
  double launchStart_ = 0;
};

/// The ExecState of a Context whose device is a CUDA device.
inline ExecState &state(rt::Context &ctx) { return *static_cast<ExecState *>(ctx.backend); }

/// The CUDA device (ProgramSpec::createDevice of --target cuda programs); null and `error`
/// when no GPU is usable.
std::unique_ptr<rt::Device> createCudaDevice(int threads, std::string *error);

/// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)", or the reason none is usable.
bool describeDevice(int device, std::string *description);

} // namespace llamac::cuda

#endif
