//===- NcclTest.cu - the collectives of generated CUDA programs, through NCCL --------===//
//
// cuda::allGather, cuda::reduceScatter and cuda::allReduce (runtime/cuda/CudaRuntime.h) on
// an ExecState whose communicator is the single-process one (rt::createCommunicator outside
// mpirun): NCCL with one rank, where a gather and a reduce-scatter are copies and an
// all-reduce is a copy (or nothing, in place), bit for bit. Also: they run on the
// communication stream ordered by events and captured in a CUDA graph, as generated code
// issues them; a program sharded over more ranks than the run has is refused (before any
// CUDA call, so that test needs no GPU); and after() reports a collective's failure naming
// the launch.
//
// Without a CUDA device (or driver) the tests that need one are skipped, as are those that
// need NCCL in a build without it.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Communicator.h"
#include "runtime/cuda/CudaRuntime.h"
#include "test/gpu/GpuTestSupport.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace llamac;
using namespace llamac::gputest;

namespace {

/// A device array of n floats, each -7 until a collective writes it.
DeviceArray<float> poisoned(int64_t n) {
  return DeviceArray<float>(std::vector<float>(size_t(n), -7.0f));
}

/// The communicator of a process not started by mpirun.
std::unique_ptr<rt::Communicator> singleProcess() {
  int argc = 0;
  char **argv = nullptr;
  std::string error;
  std::unique_ptr<rt::Communicator> comm = rt::createCommunicator(&argc, &argv, &error);
  EXPECT_NE(comm, nullptr) << error;
  return comm;
}

class NcclTest : public ::testing::Test {
protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError(); // clear the error of the failed query
      GTEST_SKIP() << "no CUDA device";
    }
    if (!cuda::haveNccl())
      GTEST_SKIP() << "this llamac was built without NCCL";
    comm = singleProcess();
    ASSERT_NE(comm, nullptr);
    ASSERT_EQ(comm->size(), 1) << "run outside mpirun";
    X = std::make_unique<cuda::ExecState>();
    std::string error;
    ASSERT_TRUE(X->init(0, &error)) << error;
    X->setCommunicator(0, comm.get());
  }
  void TearDown() override {
    X.reset(); // destroys NCCL's communicator
    comm.reset();
  }

  /// The collectives' recorded failures, then the device's.
  ::testing::AssertionResult finish() {
    std::string error = X->takeError();
    if (!error.empty())
      return ::testing::AssertionFailure() << error;
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess)
      e = cudaGetLastError();
    if (e != cudaSuccess)
      return ::testing::AssertionFailure() << cudaGetErrorString(e);
    return ::testing::AssertionSuccess();
  }

  std::unique_ptr<rt::Communicator> comm;
  std::unique_ptr<cuda::ExecState> X;
};

TEST_F(NcclTest, OneRankGatherIsACopy) {
  const int64_t n = 1001; // not a multiple of anything
  std::vector<float> shard = randomVec(n, 1);
  DeviceArray<float> in(shard);
  DeviceArray<float> out = poisoned(n);
  cuda::allGather(*X, 0, X->stream(1), in.ptr, out.ptr, n, 1, "the weights of a unit");
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(out.download(), shard));
  EXPECT_TRUE(bitEqual(in.download(), shard));
}

TEST_F(NcclTest, OneRankReduceScatterIsACopy) {
  const int64_t n = 777;
  std::vector<float> grads = randomVec(n, 2);
  DeviceArray<float> in(grads);
  DeviceArray<float> out = poisoned(n);
  cuda::reduceScatter(*X, 0, X->stream(1), in.ptr, out.ptr, n, 1, "the gradients of a unit");
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(out.download(), grads));
}

TEST_F(NcclTest, OneRankAllReduceIsACopy) {
  const int64_t n = 3;
  std::vector<float> values = randomVec(n, 3);
  DeviceArray<float> in(values);
  DeviceArray<float> out = poisoned(n);
  cuda::allReduce(*X, 0, X->stream(1), in.ptr, out.ptr, n, 1, "the gradient norm");
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(out.download(), values));
  // In place, as the gradient norm's sum of squares is reduced.
  cuda::allReduce(*X, 0, X->stream(1), in.ptr, in.ptr, n, 1, "the gradient norm");
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(in.download(), values));
}

TEST_F(NcclTest, OneCommunicatorForEveryCollective) {
  // Many collectives of each kind, one after another on the communication stream.
  const int64_t n = 64;
  std::vector<float> values = randomVec(n, 4);
  DeviceArray<float> a(values);
  DeviceArray<float> b = poisoned(n);
  DeviceArray<float> c = poisoned(n);
  for (int i = 0; i < 10; ++i) {
    cuda::allGather(*X, 0, X->stream(1), a.ptr, b.ptr, n, 1, "a");
    cuda::reduceScatter(*X, 0, X->stream(1), b.ptr, c.ptr, n, 1, "b");
    cuda::allReduce(*X, 0, X->stream(1), c.ptr, a.ptr, n, 1, "c");
  }
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(a.download(), values));
}

TEST_F(NcclTest, ProgramWithMoreRanksIsRefusedAfterConnecting) {
  std::vector<float> values = randomVec(8, 5);
  DeviceArray<float> in(values);
  DeviceArray<float> out = poisoned(16);
  cuda::allGather(*X, 0, X->stream(1), in.ptr, out.ptr, 8, 1, "a unit");
  ASSERT_TRUE(finish());
  cuda::allGather(*X, 0, X->stream(1), in.ptr, out.ptr, 8, 2, "fsdp.layers.0");
  std::string error = X->takeError();
  EXPECT_EQ(error, "the all-gather of fsdp.layers.0: it is over 2 ranks, NCCL's communicator "
                   "of grid axis 0 over 1");
}

TEST_F(NcclTest, OneCommunicatorPerGridAxis) {
  // Hybrid sharding's two axes, each its own NCCL communicator: axis 1 without an
  // rt::Communicator is one process too.
  const int64_t n = 50;
  std::vector<float> values = randomVec(n, 7);
  DeviceArray<float> in(values);
  DeviceArray<float> gathered = poisoned(n);
  DeviceArray<float> reduced = poisoned(n);
  cuda::allGather(*X, 1, X->stream(1), in.ptr, gathered.ptr, n, 1, "a");
  cuda::allReduce(*X, 0, X->stream(1), gathered.ptr, reduced.ptr, n, 1, "b");
  cuda::allReduce(*X, 1, X->stream(1), reduced.ptr, reduced.ptr, n, 1, "c");
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(reduced.download(), values));
}

TEST_F(NcclTest, CapturedInAGraphOnTheCommunicationStream) {
  // As generated code runs a function: stream 1 forks from stream 0, its collectives wait
  // for and record events, stream 0 joins it; the first run is eager (it connects), the
  // second is captured and replayed.
  const int64_t n = 300;
  std::vector<float> values = randomVec(n, 6);
  DeviceArray<float> src(values);
  DeviceArray<float> gathered = poisoned(n);
  DeviceArray<float> scattered = poisoned(n);
  DeviceArray<float> reduced = poisoned(n);
  auto body = [&] {
    cudaEventRecord(X->event(0), X->stream(0));
    cudaStreamWaitEvent(X->stream(1), X->event(0), 0);
    cuda::allGather(*X, 0, X->stream(1), src.ptr, gathered.ptr, n, 1, "a");
    cuda::reduceScatter(*X, 0, X->stream(1), gathered.ptr, scattered.ptr, n, 1, "b");
    cuda::allReduce(*X, 0, X->stream(1), scattered.ptr, reduced.ptr, n, 1, "c");
    cudaEventRecord(X->event(1), X->stream(1));
    cudaStreamWaitEvent(X->stream(0), X->event(1), 0);
  };
  body();
  ASSERT_TRUE(finish());
  EXPECT_TRUE(bitEqual(reduced.download(), values));
  for (DeviceArray<float> *d : {&gathered, &scattered, &reduced})
    ASSERT_EQ(cudaMemset(d->ptr, 0, sizeof(float) * size_t(n)), cudaSuccess);

  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(X->stream(0), cudaStreamCaptureModeThreadLocal), cudaSuccess);
  body();
  ASSERT_EQ(cudaStreamEndCapture(X->stream(0), &graph), cudaSuccess);
  ASSERT_TRUE(finish());
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int replay = 0; replay < 2; ++replay) {
    ASSERT_EQ(cudaGraphLaunch(exec, X->stream(0)), cudaSuccess);
    ASSERT_TRUE(finish());
    EXPECT_TRUE(bitEqual(gathered.download(), values));
    EXPECT_TRUE(bitEqual(scattered.download(), values));
    EXPECT_TRUE(bitEqual(reduced.download(), values));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// Without a GPU: the rank check comes before NCCL or CUDA is touched.

TEST(NcclRefusal, ProgramShardedOverMoreRanksThanTheRun) {
  std::unique_ptr<rt::Communicator> comm = singleProcess();
  ASSERT_NE(comm, nullptr);
  cuda::ExecState X; // not initialised: no device needed
  X.setCommunicator(0, comm.get());
  const float *none = nullptr;
  cuda::allGather(X, 0, nullptr, none, nullptr, 8, 2, "fsdp.layers.0");
  std::string error = X.takeError();
  if (cuda::haveNccl())
    EXPECT_NE(error.find("the program has 2 ranks along grid axis 0, this run 1"),
              std::string::npos)
        << error;
  else
    EXPECT_NE(error.find("this llamac was built without NCCL"), std::string::npos) << error;
  EXPECT_EQ(error.rfind("the all-gather of fsdp.layers.0: ", 0), 0u) << error;
  EXPECT_EQ(X.takeError(), "") << "taken once";
}

TEST(NcclRefusal, NoSuchGridAxis) {
  cuda::ExecState X;
  cuda::allReduce(X, 2, nullptr, nullptr, nullptr, 1, 1, "the gradient norm");
  EXPECT_EQ(X.takeError(), "the all-reduce of the gradient norm: the program's grid has no axis 2");
}

TEST(NcclRefusal, ReportedWithTheLaunch) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        cuda::ExecState X; // one process: no communicator
        cuda::reduceScatter(X, 0, nullptr, nullptr, nullptr, 8, 4, "fsdp.grad.layers.1");
        X.after(cuda::LaunchSite{"train_grad", 7, "reduce_scatter",
                                 "shard.reduce_scatter at tiny.mlir:3:4"},
                nullptr);
      },
      ::testing::ExitedWithCode(1),
      "error: the reduce-scatter of fsdp.grad.layers.1: .* after launch 7 \\(reduce_scatter, from "
      "shard.reduce_scatter at tiny.mlir:3:4\\) of @train_grad");
}

} // namespace
