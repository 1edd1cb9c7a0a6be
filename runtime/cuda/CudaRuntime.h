//===- CudaRuntime.h - the CUDA device and what generated CUDA code calls -*- C++ -*-===//
//
// The CUDA backend of the runtime (runtime/Device.h), and the state generated CUDA
// programs run with (codegen/CudaEmitter.cpp writes the calls):
//
//   createCudaDevice  opens GPU 0 (LLAMAC_CUDA_DEVICE picks another; under mpirun, the
//                     rank's local rank modulo the GPU count): regions come from
//                     cudaMalloc and are zeroed; the host reaches them only through copies,
//                     so the drivers keep a host copy of the parameters (TrainMain.cpp).
//   ExecState         the streams (0: compute, 1: communication, ...), events, the cuBLASLt
//                     engine, the staging buffer where an entry function's host inputs and
//                     outputs pass through, the device words where validating kernels
//                     report bad ids, the CUDA graphs of entry functions, and the NCCL
//                     communicators of the collectives (Nccl.cpp), one per grid axis.
//   allGather, reduceScatter, allReduce
//                     the collectives of FSDP programs, through NCCL on the launch's stream
//                     (the communication stream), among the ranks of one axis of the
//                     program's grid. Each axis' NCCL communicator is created at its first
//                     collective from the run's rt::Communicator of that axis
//                     (Context::grid): the group's rank 0 makes the unique id, the
//                     communicator broadcasts it, every rank of the group joins. That first
//                     collective runs eagerly (the first call of an entry function is never
//                     captured in a graph). Without NCCL at configure time they fail, saying
//                     that this llamac was built without NCCL.
//
// Errors, NCCL's included, name the launch: "CUDA error 'an illegal memory access' after
// launch 12 (flash_attention, from llama.attention at model.mlir:30:7) of @train_grad".
// Kernels run asynchronously, so an error that a kernel causes surfaces at a later check;
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
/// The axes of a sharded program's grid (rt::Context::grid): the ranks, or for hybrid
/// sharding the replicas and the shard group.
constexpr int kMaxGridAxes = 2;

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
  /// The ranks along grid axis `axis` that this rank's collectives on it run among
  /// (Context::grid[axis]), which the generated code of a function with collectives passes
  /// on before its launches; null is one process.
  void setCommunicator(int axis, rt::Communicator *comm) {
    if (axis >= 0 && axis < kMaxGridAxes)
      comm_[axis] = comm;
  }
  rt::Communicator *communicator(int axis) const {
    return axis >= 0 && axis < kMaxGridAxes ? comm_[axis] : nullptr;
  }

  enum class Collective { AllGather, ReduceScatter, AllReduce };
  /// Issues a collective among the `ranks` ranks of grid axis `axis` (the program's count;
  /// the axis' communicator must have as many) on `stream` through NCCL, creating the axis'
  /// NCCL communicator first if need be (Nccl.cpp). `n` is the element count per rank
  /// (all-reduce: the element count) of f32, or of bf16 with `bf16` (gathers of mixed-
  /// precision programs). A failure is recorded for after() to report with the launch.
  void collective(Collective kind, int axis, cudaStream_t stream, const void *in, void *out,
                  int64_t n, int64_t ranks, bool bf16, const char *what);
  /// Records a failure for after() to report with the launch (the first one is kept).
  void failed(const std::string &message) {
    if (error_.empty())
      error_ = message;
  }
  /// The recorded failure, cleared; empty when there is none.
  std::string takeError() {
    std::string error;
    error.swap(error_);
    return error;
  }

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
  /// With collectives and a watchdog timeout (the communicators' --collective-timeout), a
  /// wait longer than that names the first collective not completed, aborts the NCCL
  /// communicators and ends every rank (a rank that died or hangs stalls the others).
  void finish(const char *function);

private:
  struct Nccl; ///< an NCCL communicator (Nccl.cpp)
  /// A collective issued since the last finish(), with an event recorded after it (none
  /// while a graph is captured), for the watchdog's message.
  struct Issued {
    cudaEvent_t done;
    std::string what;
  };
  std::vector<Issued> issued_;
  std::vector<cudaEvent_t> spareEvents_;
  /// The watchdog's wait for stream 0 (Nccl.cpp); returns when it completes.
  void watchCollectives(const char *function);
  /// Aborts the NCCL communicators, so that kernels waiting for a dead peer return.
  void abortCollectives();
  /// Creates nccl_[axis] over comm_[axis]'s ranks, which must number `ranks`; false and
  /// `error` if not.
  bool connect(int axis, cudaStream_t stream, int64_t ranks, std::string *error);
  /// Destroys the NCCL communicators (on destruction).
  void disconnect();

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
  rt::Communicator *comm_[kMaxGridAxes] = {};
  Nccl *nccl_[kMaxGridAxes] = {};
  std::string error_;
};

/// The ExecState of a Context whose device is a CUDA device.
inline ExecState &state(rt::Context &ctx) { return *static_cast<ExecState *>(ctx.backend); }

/// The collectives of FSDP programs (ExecState::collective) among the ranks of grid axis
/// `axis`, on `stream`: rank r's `n` values `in` land at out[r n, (r+1) n) on every rank;
/// rank r receives block r of the sum over ranks of `in` (ranks x n values) in `out` (n
/// values); every rank receives the sum of the `n` values `in` in `out` (which may be
/// `in`). `ranks` is the program's rank count along the axis and `what` names the data for
/// messages ("fsdp.layers.0").
inline void allGather(ExecState &X, int axis, cudaStream_t stream, const float *in, float *out,
                      int64_t n, int64_t ranks, const char *what) {
  X.collective(ExecState::Collective::AllGather, axis, stream, in, out, n, ranks, false, what);
}
/// The gather of a unit in bf16 (llamac-plan-fsdp under mixed precision).
inline void allGather(ExecState &X, int axis, cudaStream_t stream, const uint16_t *in,
                      uint16_t *out, int64_t n, int64_t ranks, const char *what) {
  X.collective(ExecState::Collective::AllGather, axis, stream, in, out, n, ranks, true, what);
}
inline void reduceScatter(ExecState &X, int axis, cudaStream_t stream, const float *in,
                          float *out, int64_t n, int64_t ranks, const char *what) {
  X.collective(ExecState::Collective::ReduceScatter, axis, stream, in, out, n, ranks, false,
               what);
}
inline void allReduce(ExecState &X, int axis, cudaStream_t stream, const float *in, float *out,
                      int64_t n, int64_t ranks, const char *what) {
  X.collective(ExecState::Collective::AllReduce, axis, stream, in, out, n, ranks, false, what);
}

/// Whether this build has NCCL (without it every collective fails).
bool haveNccl();

/// The CUDA device (ProgramSpec::createDevice of --target cuda programs); null and `error`
/// when no GPU is usable.
std::unique_ptr<rt::Device> createCudaDevice(int threads, std::string *error);

/// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)", or the reason none is usable.
bool describeDevice(int device, std::string *description);

} // namespace llamac::cuda

#endif
