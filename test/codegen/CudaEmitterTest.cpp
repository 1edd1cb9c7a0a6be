//===- CudaEmitterTest.cpp - the CUDA emitter's collectives --------------------------===//
//
// A kernel-level program written by hand, sharded over two ranks, with one launch of each
// collective kind on the communication stream (stream 1) between compute launches on
// stream 0: kir::emitCuda must write each as the NCCL call of runtime/cuda/CudaRuntime.h
// (cuda::allGather, cuda::reduceScatter, cuda::allReduce) on stream 1 with the launch's
// buffers, element count, rank count and what it moves, with the event waits and records
// around it; hand the run's communicator to the execution state in the functions that have
// collectives, and only there; and accept them (cudaSupports). No CUDA toolkit is needed:
// only the text is checked (test/codegen/cuda-compile.test compiles generated programs).
// Also the launches of mixed precision: a cast each way and the GEMMs on bf16 buffers,
// which must call the uint16_t overloads of cuda::cast and GemmEngine (bf16 is held as
// uint16_t).
//
//===----------------------------------------------------------------------------------===//
#include "codegen/CudaEmitter.h"
#include "codegen/KernelIR.h"

#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace llamac::kir;

namespace {

BufferRef arena(int64_t offset, int64_t elements, ElemType type = ElemType::F32) {
  BufferRef b;
  b.space = Space::Arena;
  b.offset = offset;
  b.type = type;
  b.shape = {elements};
  return b;
}

Launch launch(KernelKind kind, int stream, const std::string &origin) {
  Launch l;
  l.kind = kind;
  l.stream = stream;
  l.origin = origin;
  return l;
}

/// One unit of 15 weights, padded to 16 and sharded over 2 ranks (8 each): @train_grad
/// gathers it, fills a gradient, reduce-scatters it and all-reduces a sum of squares; @loss
/// only fills.
Program shardedProgram() {
  Program p;
  p.modelName = "tiny";
  p.mode = "train";
  p.target = "cuda";
  p.fsdpRanks = 2;
  p.fsdpGrid = {2};
  ShardLayout layout;
  layout.ranks = 2;
  layout.flat = 15;
  layout.padded = 16;
  layout.members.push_back({"layers.0.w", 0, {3, 5}, ParamInit::Normal, 0.02});
  p.shardLayouts.push_back(layout);
  Param shard;
  shard.name = "fsdp.layers.0";
  shard.role = ParamRole::Weight;
  shard.init = ParamInit::Normal;
  shard.std = 0.02;
  shard.shape = {8};
  shard.shard = 0;
  p.params.push_back(shard);
  p.paramBytes = 64;

  Function f;
  f.name = "train_grad";
  f.arenaBytes = 256;
  Launch gather = launch(KernelKind::AllGather, 1, "shard.all_gather at tiny.mlir:10:5");
  BufferRef weights;
  weights.space = Space::Param;
  weights.index = 0;
  weights.shape = {8};
  gather.inputs = {weights};
  gather.outputs = {arena(0, 16)};
  gather.ints = {{"n", 8}, {"axis", 0}, {"ranks", 2}, {"unit", 0}};
  gather.records = 0;
  Launch fill = launch(KernelKind::Fill, 0, "llama.fill at tiny.mlir:20:5");
  fill.outputs = {arena(64, 16)};
  fill.ints = {{"n", 16}};
  fill.floats = {{"value", 1.0}};
  fill.waits = {0};
  fill.records = 1;
  Launch scatter = launch(KernelKind::ReduceScatter, 1, "shard.reduce_scatter at tiny.mlir:25:5");
  scatter.inputs = {arena(64, 16)};
  scatter.outputs = {arena(128, 8)};
  scatter.ints = {{"n", 8}, {"axis", 0}, {"ranks", 2}, {"unit", 0}};
  scatter.waits = {1};
  scatter.records = 2;
  Launch reduce = launch(KernelKind::AllReduce, 1, "shard.all_reduce at tiny.mlir:30:5");
  reduce.inputs = {arena(192, 1)};
  reduce.outputs = {arena(192, 1)};
  reduce.ints = {{"n", 1}, {"axis", 0}, {"ranks", 2}, {"unit", -1}};
  reduce.records = 3;
  f.launches = {gather, fill, scatter, reduce};
  p.functions.push_back(f);

  Function loss;
  loss.name = "loss";
  loss.arenaBytes = 256;
  loss.launches = {fill};
  loss.launches[0].waits.clear();
  loss.launches[0].records = -1;
  p.functions.push_back(loss);
  return p;
}

std::string emit(const Program &p) {
  std::string text;
  llvm::raw_string_ostream os(text);
  emitCuda(p, "llamac compile tiny.mlir --target cuda", os);
  os.flush();
  return text;
}

/// The text between `from` and the next occurrence of `to` after it ("" when absent).
std::string between(const std::string &text, const std::string &from, const std::string &to) {
  size_t start = text.find(from);
  if (start == std::string::npos)
    return "";
  size_t end = text.find(to, start + from.size());
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(CudaEmitterTest, ProgramVerifies) {
  std::string why;
  EXPECT_TRUE(verify(shardedProgram(), &why)) << why;
}

TEST(CudaEmitterTest, CollectivesAreSupported) {
  for (const Launch &l : shardedProgram().functions[0].launches) {
    std::string why;
    EXPECT_TRUE(cudaSupports(l, &why)) << kernelName(l.kind) << ": " << why;
  }
}

TEST(CudaEmitterTest, CollectivesAreNcclCallsOnTheCommunicationStream) {
  std::string text = emit(shardedProgram());
  std::string body = between(text, "void body_train_grad(", "\n}\n");
  ASSERT_FALSE(body.empty()) << text;
  const char *const expected[] = {
      // Stream 1 starts after stream 0's input copies.
      "  cudaStreamWaitEvent(X.stream(1), X.event(",
      "  LAUNCH(0, \"all_gather\", \"shard.all_gather at tiny.mlir:10:5\", "
      "cuda::allGather(X, 0, X.stream(1), at<const float>(P, 0), at<float>(A, 0), 8, 2, "
      "\"fsdp.layers.0\"));\n"
      "  cudaEventRecord(X.event(0), X.stream(1));\n",
      "  cudaStreamWaitEvent(X.stream(0), X.event(0), 0);\n"
      "  LAUNCH(1, \"fill\", ",
      "  cudaEventRecord(X.event(1), X.stream(0));\n",
      "  cudaStreamWaitEvent(X.stream(1), X.event(1), 0);\n"
      "  LAUNCH(2, \"reduce_scatter\", \"shard.reduce_scatter at tiny.mlir:25:5\", "
      "cuda::reduceScatter(X, 0, X.stream(1), at<const float>(A, 64), at<float>(A, 128), 8, 2, "
      "\"fsdp.layers.0\"));\n"
      "  cudaEventRecord(X.event(2), X.stream(1));\n",
      "  LAUNCH(3, \"all_reduce\", \"shard.all_reduce at tiny.mlir:30:5\", "
      "cuda::allReduce(X, 0, X.stream(1), at<const float>(A, 192), at<float>(A, 192), 1, 2, "
      "\"the values of shard.all_reduce at tiny.mlir:30:5\"));\n"
      "  cudaEventRecord(X.event(3), X.stream(1));\n",
      // Stream 0 ends after stream 1.
      "  cudaStreamWaitEvent(X.stream(0), X.event(",
  };
  size_t at = 0;
  for (const char *e : expected) {
    size_t found = body.find(e, at);
    ASSERT_NE(found, std::string::npos) << "missing, in order:\n" << e << "\nin:\n" << body;
    at = found + std::string(e).size();
  }
}

TEST(CudaEmitterTest, CommunicatorOnlyWhereThereAreCollectives) {
  std::string text = emit(shardedProgram());
  std::string withCollectives = between(text, "void fn_train_grad(", "\n}\n");
  std::string without = between(text, "void fn_loss(", "\n}\n");
  ASSERT_FALSE(withCollectives.empty()) << text;
  ASSERT_FALSE(without.empty()) << text;
  size_t set = withCollectives.find("  X.setCommunicator(0, ctx.grid[0]);\n");
  ASSERT_NE(set, std::string::npos) << withCollectives;
  // Before the launches run.
  EXPECT_LT(set, withCollectives.find("X.run(\"train_grad\"")) << withCollectives;
  EXPECT_EQ(without.find("setCommunicator"), std::string::npos) << without;
  EXPECT_EQ(text.find("setCommunicator", text.find("setCommunicator") + 1), std::string::npos);
}

TEST(CudaEmitterTest, HybridShardingUsesBothGridAxes) {
  // Two replicas of shard groups of two: the gather and reduce-scatter within the group
  // (axis 1), the all-reduce across the replicas (axis 0).
  Program p = shardedProgram();
  p.fsdpRanks = 4;
  p.fsdpGrid = {2, 2};
  std::vector<Launch> &launches = p.functions[0].launches;
  for (Launch &l : launches)
    for (auto &[name, value] : l.ints)
      if (name == "axis")
        value = l.kind == KernelKind::AllReduce ? 0 : 1;
  std::string why;
  ASSERT_TRUE(verify(p, &why)) << why;
  std::string text = emit(p);
  std::string fn = between(text, "void fn_train_grad(", "\n}\n");
  EXPECT_NE(fn.find("  X.setCommunicator(0, ctx.grid[0]);\n"
                    "  X.setCommunicator(1, ctx.grid[1]);\n"),
            std::string::npos)
      << fn;
  std::string body = between(text, "void body_train_grad(", "\n}\n");
  EXPECT_NE(body.find("cuda::allGather(X, 1, X.stream(1), "), std::string::npos) << body;
  EXPECT_NE(body.find("cuda::reduceScatter(X, 1, X.stream(1), "), std::string::npos) << body;
  EXPECT_NE(body.find("cuda::allReduce(X, 0, X.stream(1), "), std::string::npos) << body;

  // rt::Context has two grid axes.
  Launch third = launches[0];
  third.ints = {{"n", 8}, {"axis", 2}, {"ranks", 2}, {"unit", 0}};
  EXPECT_FALSE(cudaSupports(third, &why));
  EXPECT_EQ(why, "the CUDA collectives run along grid axis 0 or 1, not 2");
}

TEST(CudaEmitterTest, SingleCallOfACollective) {
  // Outside a program (the tuner's benchmark) the unit has no name: the origin stands in.
  Launch gather = shardedProgram().functions[0].launches[0];
  EXPECT_EQ(emitCudaCall(gather, {}, {}),
            "cuda::allGather(X, 0, X.stream(1), at<const float>(P, 0), at<float>(A, 0), 8, 2, "
            "\"the values of shard.all_gather at tiny.mlir:10:5\")");
}

TEST(CudaEmitterTest, CastsCallTheOverloadOfTheirDirection) {
  Launch narrow = launch(KernelKind::Cast, 0, "llama.cast at tiny.mlir:40:5");
  narrow.inputs = {arena(0, 10)};
  narrow.outputs = {arena(64, 10, ElemType::BF16)};
  narrow.ints = {{"n", 10}};
  std::string why;
  EXPECT_TRUE(cudaSupports(narrow, &why)) << why;
  EXPECT_EQ(emitCudaCall(narrow, {}, {}),
            "cuda::cast(at<const float>(A, 0), 10, at<uint16_t>(A, 64), X.stream(0))");

  Launch widen = launch(KernelKind::Cast, 1, "llama.cast at tiny.mlir:41:5");
  widen.inputs = {arena(64, 10, ElemType::BF16)};
  widen.outputs = {arena(128, 10)};
  widen.ints = {{"n", 10}};
  EXPECT_EQ(emitCudaCall(widen, {}, {}),
            "cuda::cast(at<const uint16_t>(A, 64), 10, at<float>(A, 128), X.stream(1))");
}

TEST(CudaEmitterTest, Bf16GemmsPassUint16Pointers) {
  // C[3,5] (+)= op(A) op(B) with K = 7, all bf16; the weight in the parameter region.
  BufferRef weight;
  weight.space = Space::Param;
  weight.type = ElemType::BF16;
  weight.shape = {5, 7};
  struct Case {
    KernelKind kind;
    bool accumulate;
    const char *call;
  } cases[] = {
      {KernelKind::GemmNT, false,
       "X.blas(X.gemm().nt(3, 5, 7, at<const uint16_t>(A, 0), at<const uint16_t>(P, 0), "
       "at<uint16_t>(A, 64), false, 2, X.stream(0)))"},
      {KernelKind::GemmNN, true,
       "X.blas(X.gemm().nn(3, 5, 7, at<const uint16_t>(A, 0), at<const uint16_t>(P, 0), "
       "at<uint16_t>(A, 64), true, 2, X.stream(0)))"},
      {KernelKind::GemmTN, true,
       "X.blas(X.gemm().tn(3, 5, 7, at<const uint16_t>(A, 0), at<const uint16_t>(P, 0), "
       "at<uint16_t>(A, 64), true, 2, X.stream(0)))"},
  };
  for (const Case &c : cases) {
    Launch gemm = launch(c.kind, 0, "llama.linear at tiny.mlir:50:5");
    gemm.inputs = {arena(0, 21, ElemType::BF16), weight};
    gemm.outputs = {arena(64, 15, ElemType::BF16)};
    gemm.ints = {{"M", 3}, {"N", 5}, {"K", 7}, {"accumulate", int64_t(c.accumulate)}, {"algo", 2}};
    std::string why;
    EXPECT_TRUE(cudaSupports(gemm, &why)) << kernelName(c.kind) << ": " << why;
    EXPECT_EQ(emitCudaCall(gemm, {}, {}), c.call) << kernelName(c.kind);
  }
}

} // namespace
