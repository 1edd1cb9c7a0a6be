//===- Communicator.h - the processes of a data-parallel run --------------*- C++ -*-===//
//
// One interface for the collectives a training run needs, with two implementations: one
// process (no library at all), and MPI (OpenMPI; CPU ranks, one or many machines, launched
// by mpirun). The generated code of a sharded program calls the collectives through
// Context::comm; CUDA programs run theirs on the device with NCCL, bootstrapped through this
// interface (runtime/cuda).
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_COMMUNICATOR_H
#define LLAMAC_RUNTIME_COMMUNICATOR_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace llamac::rt {

class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "single process", "MPI (4 ranks)".
  virtual std::string name() const = 0;
  /// In place: every rank ends with the element-wise sum over ranks. `what` names the data
  /// in the watchdog's message ("gradient of layers.3.attention.wq").
  virtual void allReduceSum(float *data, size_t n, const char *what) = 0;
  virtual void allReduceSum(double *data, size_t n, const char *what) = 0;
  /// Rank r's `perRank` values `send` land at recv[r perRank, (r+1) perRank) on every rank
  /// (FSDP's gather of a unit). `send` and `recv` do not overlap.
  virtual void allGather(const float *send, float *recv, size_t perRank, const char *what) = 0;
  /// The same for bf16 values (FSDP's gather of a unit under mixed precision).
  virtual void allGather(const uint16_t *send, uint16_t *recv, size_t perRank,
                         const char *what) = 0;
  /// The element-wise sum over ranks of `send` (size() x perRank values), of which rank r
  /// receives block r in `recv` (FSDP's gradient reduction). They do not overlap.
  virtual void reduceScatterSum(const float *send, float *recv, size_t perRank,
                                const char *what) = 0;
  /// Rank `root`'s `bytes` at `data` to every rank (bootstrapping NCCL, for one).
  virtual void broadcast(void *data, size_t bytes, int root, const char *what) = 0;
  virtual void barrier(const char *what) = 0;
  /// The ranks of this communicator with the same `color`, ordered by `key` (MPI_Comm_split);
  /// every rank must call it. Null when the library fails.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
  /// The watchdog: a collective that has not completed after `seconds` (0: never) is a
  /// stalled run. The rank that notices prints which collective stalled and aborts every
  /// rank (a rank that dies makes the others stall the same way).
  void setTimeout(double seconds) { timeout_ = seconds; }
  double timeout() const { return timeout_; }
  /// Ends every rank of the run at once (after a stall another engine noticed: NCCL's).
  [[noreturn]] virtual void abort(int status) = 0;

protected:
  double timeout_ = 0;
};

/// MPI when this process was started by mpirun (OMPI_COMM_WORLD_SIZE or PMI_SIZE in the
/// environment), otherwise one process. MPI is initialised here and finalised when the
/// communicator is destroyed. Null (and `error`) when MPI fails to start.
std::unique_ptr<Communicator> createCommunicator(int *argc, char ***argv, std::string *error);

} // namespace llamac::rt

#endif
