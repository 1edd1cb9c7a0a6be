//===- Nccl.cpp - the collectives of generated CUDA programs, through NCCL ----------===//
//
// ExecState::collective and its NCCL communicators (CudaRuntime.h), one per axis of the
// program's grid. An axis' communicator is made at its first collective, over the ranks of
// the run's rt::Communicator of that axis (this rank's group along it): the group's rank 0
// asks NCCL for a unique id, the rt::Communicator broadcasts it (with whether rank 0 got
// one, so that the others fail rather than wait when it did not), and every rank of the
// group joins with ncclCommInitRank. One process (no rt::Communicator, or one of size 1) is
// a communicator of one rank. Built without NCCL (LLAMAC_HAVE_NCCL undefined), every
// collective fails.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Communicator.h"
#include "runtime/cuda/CudaRuntime.h"

#if LLAMAC_HAVE_NCCL
// cuda_bf16.h first: older NCCL headers declare ncclBfloat16 only when the CUDA bf16 type
// is known.
#include <cuda_bf16.h>
#include <nccl.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace llamac::cuda {

namespace {

const char *collectiveName(ExecState::Collective kind) {
  switch (kind) {
  case ExecState::Collective::AllGather:
    return "all-gather";
  case ExecState::Collective::ReduceScatter:
    return "reduce-scatter";
  case ExecState::Collective::AllReduce:
    return "all-reduce";
  }
  return "collective";
}

} // namespace

#if LLAMAC_HAVE_NCCL

namespace {

/// "NCCL error 'invalid argument' (NCCL's last message)".
std::string ncclText(ncclResult_t r) {
  std::string text = std::string("NCCL error '") + ncclGetErrorString(r) + "'";
  // The communicator argument is unused: NCCL keeps its last message per thread.
  if (const char *detail = ncclGetLastError(nullptr); detail && *detail)
    text += std::string(" (") + detail + ")";
  return text;
}

} // namespace

struct ExecState::Nccl {
  ncclComm_t comm = nullptr;
  int ranks = 0, rank = 0;
};

bool haveNccl() { return true; }

bool ExecState::connect(int axis, cudaStream_t stream, int64_t ranks, std::string *error) {
  rt::Communicator *group = comm_[axis];
  int size = group ? group->size() : 1, rank = group ? group->rank() : 0;
  if (ranks != size) {
    *error = "the program has " + std::to_string(ranks) + " ranks along grid axis " +
             std::to_string(axis) + ", this run " + std::to_string(size);
    return false;
  }
  // Joining allocates and synchronises, which a stream being captured cannot; the first
  // call of an entry function runs eagerly, so this would be a bug.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) == cudaSuccess &&
      capture != cudaStreamCaptureStatusNone) {
    *error = "NCCL's communicator cannot be created while a CUDA graph is captured";
    return false;
  }
  cudaGetLastError();
  // The group's rank 0's unique id, and whether it got one, to every rank of the group.
  struct {
    int32_t ok;
    ncclUniqueId id;
  } root;
  std::memset(&root, 0, sizeof root);
  ncclResult_t r = ncclSuccess;
  if (rank == 0) {
    r = ncclGetUniqueId(&root.id);
    root.ok = r == ncclSuccess;
  }
  if (group)
    group->broadcast(&root, sizeof root, 0, "NCCL's unique id");
  if (!root.ok) {
    *error = rank == 0 ? "cannot make NCCL's unique id: " + ncclText(r)
                       : std::string("rank 0 of the group could not make NCCL's unique id");
    return false;
  }
  ncclComm_t comm = nullptr;
  if (r = ncclCommInitRank(&comm, size, root.id, rank); r != ncclSuccess) {
    *error = "cannot create NCCL's communicator (rank " + std::to_string(rank) + " of " +
             std::to_string(size) + " along grid axis " + std::to_string(axis) +
             "): " + ncclText(r);
    return false;
  }
  nccl_[axis] = new Nccl{comm, size, rank};
  return true;
}

void ExecState::disconnect() {
  bool any = false;
  for (Nccl *n : nccl_)
    any = any || n;
  if (!any)
    return;
  // The collectives still queued finish first.
  cudaDeviceSynchronize();
  for (Nccl *&n : nccl_) {
    if (!n)
      continue;
    ncclCommDestroy(n->comm);
    delete n;
    n = nullptr;
  }
}

void ExecState::collective(Collective kind, int axis, cudaStream_t stream, const void *in,
                           void *out, int64_t n, int64_t ranks, bool bf16, const char *what) {
  // "the all-gather of fsdp.layers.0: <why>", to which after() adds the launch.
  std::string context = std::string("the ") + collectiveName(kind) + " of " + what + ": ";
  if (axis < 0 || axis >= kMaxGridAxes) {
    failed(context + "the program's grid has no axis " + std::to_string(axis));
    return;
  }
  std::string why;
  if (!nccl_[axis] && !connect(axis, stream, ranks, &why)) {
    failed(context + why);
    return;
  }
  Nccl &group = *nccl_[axis];
  if (ranks != group.ranks) {
    failed(context + "it is over " + std::to_string(ranks) + " ranks, NCCL's communicator of "
           "grid axis " + std::to_string(axis) + " over " + std::to_string(group.ranks));
    return;
  }
  ncclResult_t r = ncclSuccess;
  size_t count = size_t(n);
  // Sums are always of f32 (mixed precision reduces gradients in f32); gathers move bf16
  // weights as they are.
  ncclDataType_t type = bf16 ? ncclBfloat16 : ncclFloat32;
  switch (kind) {
  case Collective::AllGather:
    r = ncclAllGather(in, out, count, type, group.comm, stream);
    break;
  case Collective::ReduceScatter:
    r = ncclReduceScatter(in, out, count, type, ncclSum, group.comm, stream);
    break;
  case Collective::AllReduce:
    r = ncclAllReduce(in, out, count, type, ncclSum, group.comm, stream);
    break;
  }
  if (r != ncclSuccess) {
    failed(context + ncclText(r));
    return;
  }
  // For the watchdog: an event after it, unless a graph is being captured (a replayed graph
  // is watched as a whole).
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaStreamIsCapturing(stream, &capture);
  if (capture != cudaStreamCaptureStatusNone)
    return;
  cudaEvent_t done = nullptr;
  if (!spareEvents_.empty()) {
    done = spareEvents_.back();
    spareEvents_.pop_back();
  } else if (cudaEventCreateWithFlags(&done, cudaEventDisableTiming) != cudaSuccess) {
    return;
  }
  cudaEventRecord(done, stream);
  issued_.push_back({done, std::string(collectiveName(kind)) + " of " + what});
}

void ExecState::watchCollectives(const char *function) {
  double timeout = 0;
  rt::Communicator *world = nullptr;
  for (int a = 0; a < kMaxGridAxes; ++a)
    if (nccl_[a] && comm_[a]) {
      timeout = std::max(timeout, comm_[a]->timeout());
      world = comm_[a];
    }
  if (timeout > 0 && world) {
    auto start = std::chrono::steady_clock::now();
    while (cudaStreamQuery(streams_[0]) == cudaErrorNotReady) {
      double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > timeout) {
        std::string stalled = "the collectives of @" + std::string(function);
        for (const Issued &i : issued_)
          if (cudaEventQuery(i.done) == cudaErrorNotReady) {
            stalled = "the " + i.what + " in @" + function;
            break;
          }
        std::fprintf(stderr,
                     "error: %s has not completed after %.0f s on the GPU (NCCL); another "
                     "rank died or hangs. Aborting the run.\n",
                     stalled.c_str(), waited);
        std::fflush(stderr);
        abortCollectives();
        world->abort(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  for (Issued &i : issued_)
    spareEvents_.push_back(i.done);
  issued_.clear();
}

void ExecState::abortCollectives() {
  for (Nccl *&n : nccl_)
    if (n) {
      ncclCommAbort(n->comm);
      delete n;
      n = nullptr;
    }
}

#else // !LLAMAC_HAVE_NCCL

struct ExecState::Nccl {};

bool haveNccl() { return false; }

bool ExecState::connect(int, cudaStream_t, int64_t, std::string *error) {
  *error = "this llamac was built without NCCL (nccl.h and libnccl were not found when it was "
           "configured)";
  return false;
}

void ExecState::disconnect() {}

void ExecState::collective(Collective kind, int axis, cudaStream_t stream, const void *, void *,
                           int64_t, int64_t ranks, bool, const char *what) {
  std::string why = "the program's grid has no axis " + std::to_string(axis);
  if (axis >= 0 && axis < kMaxGridAxes)
    connect(axis, stream, ranks, &why);
  failed(std::string("the ") + collectiveName(kind) + " of " + what + ": " + why);
}

void ExecState::watchCollectives(const char *) {}

void ExecState::abortCollectives() {}

#endif

} // namespace llamac::cuda
