//===- CudaDevice.cpp - the CUDA device and the execution state of generated code -----===//
#include "runtime/cuda/CudaRuntime.h"
#include "runtime/cuda/CudaKernels.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace llamac::cuda {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool envOn(const char *name) {
  const char *v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

std::string cudaText(cudaError_t e) {
  return std::string("CUDA error '") + cudaGetErrorString(e) + "'";
}

[[noreturn]] void die(const std::string &message) {
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s\n", message.c_str());
  std::exit(1);
}

class CudaBuffer final : public rt::Buffer {
public:
  CudaBuffer(std::byte *data, size_t size) : data_(data), size_(size) {}
  ~CudaBuffer() override { cudaFree(data_); }
  std::byte *data() override { return data_; }
  size_t size() const override { return size_; }

private:
  std::byte *data_;
  size_t size_;
};

class CudaEvent final : public rt::Event {
public:
  CudaEvent() { cudaEventCreate(&event_); }
  ~CudaEvent() override { cudaEventDestroy(event_); }
  void synchronize() override { cudaEventSynchronize(event_); }
  double secondsSince(const rt::Event &earlier) const override {
    float ms = 0;
    cudaEventElapsedTime(&ms, static_cast<const CudaEvent &>(earlier).event_, event_);
    return ms / 1e3;
  }
  cudaEvent_t get() const { return event_; }

private:
  cudaEvent_t event_ = nullptr;
};

/// A driver-level stream: generated entry functions enqueue on the ExecState's own streams,
/// so launching one is calling it; ordering with this stream is through stream 0.
class CudaStream final : public rt::Stream {
public:
  explicit CudaStream(cudaStream_t s) : stream_(s) {}
  void launch(const char *, const std::function<void()> &kernel) override { kernel(); }
  void record(rt::Event &event) override {
    cudaEventRecord(static_cast<CudaEvent &>(event).get(), stream_);
  }
  void wait(rt::Event &event) override {
    cudaStreamWaitEvent(stream_, static_cast<CudaEvent &>(event).get(), 0);
  }
  void synchronize() override { cudaStreamSynchronize(stream_); }

private:
  cudaStream_t stream_;
};

class CudaDevice final : public rt::Device {
public:
  bool open(int device, std::string *error) {
    if (!describeDevice(device, &name_)) {
      *error = name_;
      return false;
    }
    return state_.init(device, error);
  }
  std::string name() const override { return name_; }
  std::unique_ptr<rt::Buffer> allocate(size_t bytes, std::string *error) override {
    void *p = nullptr;
    size_t rounded = bytes ? (bytes + 255) / 256 * 256 : 256;
    if (cudaError_t e = cudaMalloc(&p, rounded); e != cudaSuccess) {
      size_t freeBytes = 0, totalBytes = 0;
      cudaMemGetInfo(&freeBytes, &totalBytes);
      if (error)
        *error = "cannot allocate " + std::to_string(bytes) + " bytes on the GPU (" +
                 std::to_string(freeBytes) + " of " + std::to_string(totalBytes) +
                 " free): " + cudaGetErrorString(e);
      cudaGetLastError();
      return nullptr;
    }
    cudaMemset(p, 0, rounded);
    return std::make_unique<CudaBuffer>(static_cast<std::byte *>(p), bytes);
  }
  std::unique_ptr<rt::Stream> createStream() override {
    return std::make_unique<CudaStream>(state_.stream(0));
  }
  std::unique_ptr<rt::Event> createEvent() override { return std::make_unique<CudaEvent>(); }
  void synchronize() override { cudaDeviceSynchronize(); }
  bool hostAccessible() const override { return false; }
  bool copyToDevice(std::byte *dst, const void *src, size_t bytes, std::string *error) override {
    if (cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice); e != cudaSuccess) {
      *error = "copy to the GPU: " + cudaText(e);
      return false;
    }
    return true;
  }
  bool copyToHost(void *dst, const std::byte *src, size_t bytes, std::string *error) override {
    if (cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost); e != cudaSuccess) {
      *error = "copy from the GPU: " + cudaText(e);
      return false;
    }
    return true;
  }
  void *backend() override { return &state_; }

private:
  std::string name_;
  ExecState state_;
};

} // namespace

[[noreturn]] void fail(const LaunchSite &site, const std::string &what) {
  die(what + " after launch " + std::to_string(site.index) + " (" + site.kernel + ", from " +
      site.origin + ") of @" + site.function +
      (envOn("LLAMAC_CUDA_SYNC") ? ""
                                 : "; kernels run asynchronously, rerun with LLAMAC_CUDA_SYNC=1 "
                                   "to stop at the launch that failed"));
}

bool describeDevice(int device, std::string *description) {
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0) {
    *description = e != cudaSuccess ? "no usable CUDA device: " + std::string(cudaGetErrorString(e))
                                    : std::string("no CUDA device");
    cudaGetLastError();
    return false;
  }
  if (device < 0 || device >= count) {
    *description = "CUDA device " + std::to_string(device) + " does not exist (there are " +
                   std::to_string(count) + ")";
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaError_t e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess) {
    *description = cudaText(e);
    return false;
  }
  if (prop.major < 8) {
    *description = std::string(prop.name) + " is sm_" + std::to_string(prop.major) +
                   std::to_string(prop.minor) + "; llamac's CUDA code needs sm_80 or newer";
    return false;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, " (sm_%d%d, %.1f GiB)", prop.major, prop.minor,
                double(prop.totalGlobalMem) / double(1 << 30));
  *description = std::string(prop.name) + buf;
  return true;
}

ExecState::~ExecState() {
  disconnect();
  for (auto &[name, g] : graphExecs_)
    cudaGraphExecDestroy(g);
  for (cudaEvent_t e : events_)
    cudaEventDestroy(e);
  for (const Issued &i : issued_)
    cudaEventDestroy(i.done);
  for (cudaEvent_t e : spareEvents_)
    cudaEventDestroy(e);
  for (cudaStream_t s : streams_)
    if (s)
      cudaStreamDestroy(s);
  if (staging_)
    cudaFree(staging_);
  if (words_)
    cudaFree(words_);
}

bool ExecState::init(int device, std::string *error) {
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    *error = cudaText(e);
    return false;
  }
  for (cudaStream_t &s : streams_)
    if (cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking); e != cudaSuccess) {
      *error = "cannot create a stream: " + cudaText(e);
      return false;
    }
  syncEach_ = envOn("LLAMAC_CUDA_SYNC");
  graphs_ = envOn("LLAMAC_CUDA_GRAPHS");
  return gemm_.init(error);
}

cudaEvent_t ExecState::event(int i) {
  while (int(events_.size()) <= i) {
    cudaEvent_t e = nullptr;
    if (cudaError_t err = cudaEventCreateWithFlags(&e, cudaEventDisableTiming); err != cudaSuccess)
      die("cannot create a CUDA event: " + cudaText(err));
    events_.push_back(e);
  }
  return events_[size_t(i)];
}

std::byte *ExecState::staging(size_t bytes) {
  if (bytes > stagingBytes_) {
    cudaDeviceSynchronize();
    if (staging_)
      cudaFree(staging_);
    staging_ = nullptr;
    if (cudaError_t e = cudaMalloc(&staging_, bytes); e != cudaSuccess)
      die("cannot allocate " + std::to_string(bytes) + " bytes of staging memory: " + cudaText(e));
    stagingBytes_ = bytes;
    // Graphs captured with the old buffer's addresses are stale.
    for (auto &[name, g] : graphExecs_)
      cudaGraphExecDestroy(g);
    graphExecs_.clear();
  }
  return static_cast<std::byte *>(staging_);
}

int64_t *ExecState::errorWords(int n) {
  if (n <= 0)
    return nullptr;
  if (n > wordsCount_) {
    cudaDeviceSynchronize();
    if (words_)
      cudaFree(words_);
    if (cudaError_t e = cudaMalloc(reinterpret_cast<void **>(&words_), size_t(n) * sizeof(int64_t)); e != cudaSuccess)
      die("cannot allocate device memory: " + cudaText(e));
    wordsCount_ = n;
    for (auto &[name, g] : graphExecs_)
      cudaGraphExecDestroy(g);
    graphExecs_.clear();
  }
  cudaMemsetAsync(words_, 0xff, size_t(n) * sizeof(int64_t), streams_[0]); // -1
  return words_;
}

void ExecState::before(rt::Profiler *profiler) {
  if (profiler) {
    cudaDeviceSynchronize();
    launchStart_ = now();
  }
}

void ExecState::after(const LaunchSite &site, rt::Profiler *profiler) {
  if (blasStatus_ != CUBLAS_STATUS_SUCCESS) {
    cublasStatus_t s = blasStatus_;
    blasStatus_ = CUBLAS_STATUS_SUCCESS;
    fail(site, std::string("cuBLASLt: ") + statusName(s));
  }
  if (!error_.empty())
    fail(site, takeError());
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    fail(site, cudaText(e));
  if (syncEach_ || profiler) {
    if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess)
      fail(site, cudaText(e));
    if (profiler)
      profiler->add(site.kernel, now() - launchStart_);
  }
}

void ExecState::run(const char *name, rt::Profiler *profiler, const std::function<void()> &body) {
  if (!graphs_ || profiler || syncEach_) {
    body();
    return;
  }
  // A grown kernel scratch buffer invalidates every graph that captured the old one.
  if (scratchGeneration() != graphScratch_) {
    for (auto &[n, g] : graphExecs_)
      cudaGraphExecDestroy(g);
    graphExecs_.clear();
    graphScratch_ = scratchGeneration();
  }
  auto it = graphExecs_.find(name);
  if (it == graphExecs_.end()) {
    // The first call runs directly (it creates the cuBLASLt plans and grows the library's
    // scratch, neither of which may happen during a capture); the second is captured.
    if (eagerRuns_[name]++ == 0) {
      body();
      return;
    }
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (cudaError_t e = cudaStreamBeginCapture(streams_[0], cudaStreamCaptureModeThreadLocal);
        e != cudaSuccess)
      die(std::string("cannot capture @") + name + " in a CUDA graph: " + cudaText(e));
    body();
    if (cudaError_t e = cudaStreamEndCapture(streams_[0], &graph); e != cudaSuccess)
      die(std::string("cannot capture @") + name + " in a CUDA graph: " + cudaText(e));
    if (cudaError_t e = cudaGraphInstantiate(&exec, graph, 0); e != cudaSuccess)
      die(std::string("cannot instantiate the CUDA graph of @") + name + ": " + cudaText(e));
    cudaGraphDestroy(graph);
    it = graphExecs_.emplace(name, exec).first;
  }
  if (cudaError_t e = cudaGraphLaunch(it->second, streams_[0]); e != cudaSuccess)
    die(std::string("the CUDA graph of @") + name + " failed to launch: " + cudaText(e));
}

void ExecState::copyIn(std::byte *dst, const void *src, size_t bytes, const char *function) {
  if (cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, streams_[0]);
      e != cudaSuccess)
    die(std::string("copying an input of @") + function + " to the GPU: " + cudaText(e));
}

void ExecState::copyOut(void *dst, const std::byte *src, size_t bytes, const char *function) {
  if (cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, streams_[0]);
      e != cudaSuccess)
    die(std::string("copying an output of @") + function + " from the GPU: " + cudaText(e));
}

void ExecState::finish(const char *function) {
  watchCollectives(function);
  cudaError_t e = cudaStreamSynchronize(streams_[0]);
  if (e == cudaSuccess)
    e = cudaGetLastError();
  if (e != cudaSuccess)
    die(std::string("@") + function + " failed on the GPU (" + cudaText(e) +
        "); rerun with LLAMAC_CUDA_SYNC=1 to find the launch");
}

void ExecState::checkWords(const int64_t *words, const LaunchSite *sites, int n,
                           const char *const *what) {
  if (n <= 0)
    return;
  watchCollectives(sites[0].function); // the wait below must not hang on a dead rank
  std::vector<int64_t> host(size_t(n), -1);
  cudaError_t e = cudaMemcpyAsync(host.data(), words, size_t(n) * sizeof(int64_t),
                                  cudaMemcpyDeviceToHost, streams_[0]);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(streams_[0]);
  if (e != cudaSuccess)
    die(std::string("@") + sites[0].function + " failed on the GPU (" + cudaText(e) +
        "); rerun with LLAMAC_CUDA_SYNC=1 to find the launch");
  for (int i = 0; i < n; ++i)
    if (host[size_t(i)] >= 0)
      die(std::string(what[i]) + " (index " + std::to_string(host[size_t(i)]) +
          ") in the kernel of " + sites[i].origin);
}

std::unique_ptr<rt::Device> createCudaDevice(int /*threads*/, std::string *error) {
  int device = 0;
  if (const char *v = std::getenv("LLAMAC_CUDA_DEVICE"); v && *v) {
    char *end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 0 || n > 1024) {
      *error = std::string("LLAMAC_CUDA_DEVICE must be a GPU number, not '") + v + "'";
      return nullptr;
    }
    device = int(n);
  } else {
    // Under mpirun, the ranks of one machine share its GPUs: the rank's place among them
    // (OpenMPI's local rank; MPICH's) picks one, round robin.
    for (const char *name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"}) {
      const char *v = std::getenv(name);
      if (!v || !*v)
        continue;
      char *end = nullptr;
      long local = std::strtol(v, &end, 10);
      int count = 0;
      if (*end == '\0' && local >= 0 && cudaGetDeviceCount(&count) == cudaSuccess && count > 0)
        device = int(local % count);
      cudaGetLastError();
      break;
    }
  }
  auto d = std::make_unique<CudaDevice>();
  if (!d->open(device, error))
    return nullptr;
  return d;
}

} // namespace llamac::cuda
