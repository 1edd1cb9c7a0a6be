//===- Communicator.cpp - the processes of a data-parallel run ----------------------===//
#include "runtime/Communicator.h"

// The C API only: OpenMPI's deprecated C++ bindings need a library of their own.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

using namespace llamac::rt;

namespace {

class SingleProcess : public Communicator {
public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single process"; }
  void allReduceSum(float *, size_t, const char *) override {}
  void allReduceSum(double *, size_t, const char *) override {}
  void allGather(const float *send, float *recv, size_t perRank, const char *) override {
    std::copy(send, send + perRank, recv);
  }
  void allGather(const uint16_t *send, uint16_t *recv, size_t perRank, const char *) override {
    std::copy(send, send + perRank, recv);
  }
  void reduceScatterSum(const float *send, float *recv, size_t perRank,
                        const char *) override {
    std::copy(send, send + perRank, recv);
  }
  void broadcast(void *, size_t, int, const char *) override {}
  void barrier(const char *) override {}
  [[noreturn]] void abort(int status) override { std::_Exit(status); }
  std::unique_ptr<Communicator> split(int, int) override {
    return std::make_unique<SingleProcess>();
  }
};

class Mpi : public Communicator {
public:
  /// The world (`world`: owns MPI, finalised with it) or a group split from it.
  Mpi(MPI_Comm comm, bool world) : comm_(comm), world_(world) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    MPI_Comm_rank(MPI_COMM_WORLD, &worldRank_);
    MPI_Comm_size(MPI_COMM_WORLD, &worldSize_);
  }
  ~Mpi() override {
    if (world_)
      MPI_Finalize();
    else
      MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "MPI (" + std::to_string(size_) + " ranks)"; }
  [[noreturn]] void abort(int status) override {
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
    std::_Exit(status); // MPI_Abort does not return; this tells the compiler so
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm group;
    if (MPI_Comm_split(comm_, color, key, &group) != MPI_SUCCESS)
      return nullptr;
    auto c = std::make_unique<Mpi>(group, false);
    c->setTimeout(timeout_);
    return c;
  }
  void allReduceSum(float *data, size_t n, const char *what) override {
    reduce(data, n, MPI_FLOAT, 4, what);
  }
  void allReduceSum(double *data, size_t n, const char *what) override {
    reduce(data, n, MPI_DOUBLE, 8, what);
  }
  void allGather(const float *send, float *recv, size_t perRank, const char *what) override {
    gather(send, recv, perRank, MPI_FLOAT, sizeof(float), what);
  }
  void allGather(const uint16_t *send, uint16_t *recv, size_t perRank,
                 const char *what) override {
    gather(send, recv, perRank, MPI_UINT16_T, sizeof(uint16_t), what);
  }
  void reduceScatterSum(const float *send, float *recv, size_t perRank,
                        const char *what) override {
    if (perRank <= kChunk) {
      MPI_Request request;
      MPI_Ireduce_scatter_block(send, recv, int(perRank), MPI_FLOAT, MPI_SUM, comm_,
                                &request);
      wait(request, "reduce-scatter", what, perRank);
      return;
    }
    // Larger blocks: the rank's part of each chunk is reduced to it, chunk by chunk.
    for (size_t done = 0; done < perRank; done += kChunk) {
      size_t count = std::min(kChunk, perRank - done);
      for (int r = 0; r < size_; ++r) {
        MPI_Request request;
        MPI_Ireduce(send + size_t(r) * perRank + done, r == rank_ ? recv + done : nullptr,
                    int(count), MPI_FLOAT, MPI_SUM, r, comm_, &request);
        wait(request, "reduce-scatter", what, count);
      }
    }
  }
  void broadcast(void *data, size_t bytes, int root, const char *what) override {
    char *p = static_cast<char *>(data);
    for (size_t done = 0; done < bytes; done += kChunk) {
      size_t count = std::min(kChunk, bytes - done);
      MPI_Request request;
      MPI_Ibcast(p + done, int(count), MPI_BYTE, root, comm_, &request);
      wait(request, "broadcast", what, count);
    }
  }
  void barrier(const char *what) override {
    MPI_Request request;
    MPI_Ibarrier(comm_, &request);
    wait(request, "barrier", what, 0);
  }

private:
  // MPI counts are ints.
  static constexpr size_t kChunk = size_t(1) << 28;
  /// `count` elements of `type` (`bytes` each) whose extent is `stride` elements: one
  /// rank's part of a gathered chunk.
  static MPI_Datatype blockType(size_t count, size_t stride, MPI_Datatype type, size_t bytes) {
    MPI_Datatype contiguous, resized;
    MPI_Type_contiguous(int(count), type, &contiguous);
    MPI_Type_create_resized(contiguous, 0, MPI_Aint(stride * bytes), &resized);
    MPI_Type_commit(&resized);
    MPI_Type_free(&contiguous);
    return resized;
  }
  /// Chunked like the reductions: chunk c of every rank's block, gathered with a strided
  /// receive type so that each lands inside its rank's block.
  void gather(const void *send, void *recv, size_t perRank, MPI_Datatype type, size_t bytes,
              const char *what) {
    const char *s = static_cast<const char *>(send);
    char *r = static_cast<char *>(recv);
    for (size_t done = 0; done < perRank; done += kChunk) {
      size_t count = std::min(kChunk, perRank - done);
      MPI_Datatype block = blockType(count, perRank, type, bytes);
      MPI_Request request;
      MPI_Iallgather(s + done * bytes, int(count), type, r + done * bytes, 1, block, comm_,
                     &request);
      wait(request, "all-gather", what, count);
      MPI_Type_free(&block);
    }
  }
  void reduce(void *data, size_t n, MPI_Datatype type, size_t bytes, const char *what) {
    char *p = static_cast<char *>(data);
    for (size_t done = 0; done < n; done += kChunk) {
      size_t count = std::min(kChunk, n - done);
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, p + done * bytes, int(count), type, MPI_SUM, comm_,
                     &request);
      wait(request, "all-reduce", what, count);
    }
  }
  /// Completes `request`, or reports the stall and aborts the run when the watchdog's time
  /// has passed.
  void wait(MPI_Request &request, const char *kind, const char *what, size_t count) {
    if (timeout_ <= 0) {
      MPI_Wait(&request, MPI_STATUS_IGNORE);
      return;
    }
    auto start = std::chrono::steady_clock::now();
    int done = 0;
    while (MPI_Test(&request, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done) {
      double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > timeout_) {
        std::fprintf(stderr,
                     "error: rank %d of %d: the %s of %s (%zu values) has not completed after "
                     "%.0f s; another rank died or hangs. Aborting the run.\n",
                     worldRank_, worldSize_, kind, what, count, waited);
        abort(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  MPI_Comm comm_;
  bool world_;
  int rank_ = 0, size_ = 1, worldRank_ = 0, worldSize_ = 1;
};

} // namespace

std::unique_ptr<Communicator> llamac::rt::createCommunicator(int *argc, char ***argv,
                                                             std::string *error) {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE") && !std::getenv("PMI_SIZE"))
    return std::make_unique<SingleProcess>();
  if (MPI_Init(argc, argv) != MPI_SUCCESS) {
    if (error)
      *error = "MPI_Init failed";
    return nullptr;
  }
  return std::make_unique<Mpi>(MPI_COMM_WORLD, true);
}
