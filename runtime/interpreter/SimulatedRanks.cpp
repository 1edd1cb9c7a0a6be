//===- SimulatedRanks.cpp - collectives over ranks simulated in one process --------===//
#include "runtime/interpreter/SimulatedRanks.h"

#include "runtime/interpreter/Interpreter.h"

#include <thread>

namespace llamac {

SimulatedGroup::SimulatedGroup(int size) : size_(size), slots_(size), whats_(size) {}

bool SimulatedGroup::barrier(std::unique_lock<std::mutex> &lock) {
  unsigned long long generation = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
  } else {
    cv_.wait(lock, [&] { return generation_ != generation || aborted_; });
  }
  return !aborted_;
}

bool SimulatedGroup::exchange(int rank, const std::string &what, const Tensor &mine,
                              std::vector<Tensor> &all, std::string *error) {
  std::unique_lock<std::mutex> lock(mutex_);
  slots_[rank] = &mine;
  whats_[rank] = what;
  if (!barrier(lock)) {
    *error = "another rank failed: " + abortReason_;
    return false;
  }
  for (int r = 0; r < size_; ++r)
    if (whats_[r] != whats_[0]) {
      *error = "ranks disagree on the collective: rank 0 runs " + whats_[0] + ", rank " +
               std::to_string(r) + " runs " + whats_[r];
      return false;
    }
  all.clear();
  for (int r = 0; r < size_; ++r)
    all.push_back(*slots_[r]);
  // Nobody may post the next collective before everyone has read this one.
  if (!barrier(lock)) {
    *error = "another rank failed: " + abortReason_;
    return false;
  }
  return true;
}

void SimulatedGroup::abort(const std::string &why) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!aborted_)
    abortReason_ = why;
  aborted_ = true;
  cv_.notify_all();
}

bool runSimulatedRanks(
    int ranks, const std::function<std::unique_ptr<Interpreter>()> &makeInterpreter,
    const std::string &name, const std::vector<std::vector<Tensor>> &inputs,
    std::vector<std::vector<Tensor>> &outputs, std::string *error,
    const std::function<bool(Interpreter &, int rank, std::string *)> &setup) {
  SimulatedGroup group(ranks);
  outputs.assign(ranks, {});
  std::vector<std::string> errors(ranks);
  std::vector<char> ok(ranks, 0);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      std::unique_ptr<Interpreter> interp = makeInterpreter();
      interp->attach(&group, r);
      ok[r] = (!setup || setup(*interp, r, &errors[r])) &&
              interp->run(name, inputs[r], outputs[r], &errors[r]);
      if (!ok[r])
        group.abort("rank " + std::to_string(r) + ": " + errors[r]);
    });
  for (std::thread &t : threads)
    t.join();
  // Report the rank that failed first-hand, not the ones it woke.
  for (int r = 0; r < ranks; ++r)
    if (!ok[r] && errors[r].rfind("another rank failed", 0) != 0) {
      *error = "rank " + std::to_string(r) + ": " + errors[r];
      return false;
    }
  for (int r = 0; r < ranks; ++r)
    if (!ok[r]) {
      *error = "rank " + std::to_string(r) + ": " + errors[r];
      return false;
    }
  return true;
}

} // namespace llamac
