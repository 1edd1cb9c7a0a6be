//===- SimulatedRanks.h - collectives over ranks simulated in one process ---*- C++ -*-===//
//
// The interpreter's stand-in for MPI and NCCL: N ranks, one thread each, each with its own
// Interpreter, exchanging tensors through shared memory. A collective is an exchange in
// which every rank posts its tensor and receives everyone's, then computes its own result
// (all-gather: concatenate, all-reduce: reduce, reduce-scatter: reduce and keep its chunk)
// — obviously right, if not fast. A rank that fails aborts the group, so no rank waits for
// ever on a collective that will not come.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_INTERPRETER_SIMULATEDRANKS_H
#define LLAMAC_RUNTIME_INTERPRETER_SIMULATEDRANKS_H

#include "runtime/Tensor.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace llamac {

class Interpreter;

class SimulatedGroup {
public:
  explicit SimulatedGroup(int size);
  int size() const { return size_; }

  /// Rank `rank` posts `mine`, described by `what` (the collective and its operand type);
  /// on return `all` holds every rank's tensor in rank order. Fails (with `error`) when the
  /// ranks disagree on `what` or another rank aborted.
  bool exchange(int rank, const std::string &what, const Tensor &mine,
                std::vector<Tensor> &all, std::string *error);
  /// Wakes every waiting rank with a failure.
  void abort(const std::string &why);

private:
  bool barrier(std::unique_lock<std::mutex> &lock);

  int size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int arrived_ = 0;
  unsigned long long generation_ = 0;
  bool aborted_ = false;
  std::string abortReason_;
  std::vector<const Tensor *> slots_;
  std::vector<std::string> whats_;
};

/// Runs function `name` on `ranks` ranks: rank r gets `inputs[r]` and, through `setup`
/// (optional), its parameters. On success `outputs[r]` holds rank r's results; on failure
/// `error` names the first rank that failed and why.
bool runSimulatedRanks(
    int ranks, const std::function<std::unique_ptr<Interpreter>()> &makeInterpreter,
    const std::string &name, const std::vector<std::vector<Tensor>> &inputs,
    std::vector<std::vector<Tensor>> &outputs, std::string *error,
    const std::function<bool(Interpreter &, int rank, std::string *)> &setup = nullptr);

} // namespace llamac

#endif
