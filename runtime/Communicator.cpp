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
  void barrier(const char *) override {}
};

class Mpi : public Communicator {
public:
  Mpi() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~Mpi() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "MPI (" + std::to_string(size_) + " ranks)"; }
  // MPI counts are ints: large tensors go in chunks.
  void allReduceSum(float *data, size_t n, const char *what) override {
    reduce(data, n, MPI_FLOAT, 4, what);
  }
  void allReduceSum(double *data, size_t n, const char *what) override {
    reduce(data, n, MPI_DOUBLE, 8, what);
  }
  void barrier(const char *what) override {
    MPI_Request request;
    MPI_Ibarrier(MPI_COMM_WORLD, &request);
    wait(request, "barrier", what, 0);
  }

private:
  void reduce(void *data, size_t n, MPI_Datatype type, size_t bytes, const char *what) {
    constexpr size_t kChunk = size_t(1) << 28;
    char *p = static_cast<char *>(data);
    for (size_t done = 0; done < n; done += kChunk) {
      size_t count = std::min(kChunk, n - done);
      MPI_Request request;
      MPI_Iallreduce(MPI_IN_PLACE, p + done * bytes, int(count), type, MPI_SUM, MPI_COMM_WORLD,
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
                     rank_, size_, kind, what, count, waited);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  int rank_ = 0, size_ = 1;
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
  return std::make_unique<Mpi>();
}
