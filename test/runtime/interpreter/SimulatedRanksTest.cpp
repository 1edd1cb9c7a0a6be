//===- SimulatedRanksTest.cpp - collectives over simulated ranks, by hand ----------===//
#include "dialects/InitAllDialects.h"
#include "runtime/interpreter/Interpreter.h"
#include "runtime/interpreter/SimulatedRanks.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace llamac;

namespace {

const char *kProgram = R"mlir(
llama.model @m config <dim = 8, n_layers = 1, n_heads = 2, n_kv_heads = 2, ffn_dim = 16,
    vocab_size = 16, max_seq_len = 8, norm_eps = 1.0e-05, rope_theta = 1.0e+04> {
  shard.grid @ring(shape = 4)
  shard.grid @mesh(shape = 2x2)
  func.func @line(%x: tensor<4x3xf32>) -> (tensor<16x3xf32>, tensor<4x3xf32>, tensor<1x3xf32>, tensor<4x3xf32>, index) {
    %g = shard.all_gather %x on @ring grid_axes = [0] gather_axis = 0 : tensor<4x3xf32> -> tensor<16x3xf32>
    %s = shard.all_reduce %x on @ring grid_axes = [0] reduction = sum : tensor<4x3xf32> -> tensor<4x3xf32>
    %r = shard.reduce_scatter %x on @ring grid_axes = [0] reduction = sum scatter_axis = 0 : tensor<4x3xf32> -> tensor<1x3xf32>
    %a = shard.all_reduce %x on @ring grid_axes = [0] reduction = max : tensor<4x3xf32> -> tensor<4x3xf32>
    %i = shard.process_linear_index on @ring : index
    return %g, %s, %r, %a, %i : tensor<16x3xf32>, tensor<4x3xf32>, tensor<1x3xf32>, tensor<4x3xf32>, index
  }
  func.func @square(%x: tensor<1x2xf32>) -> (tensor<1x4xf32>, tensor<1x2xf32>) {
    %g = shard.all_gather %x on @mesh grid_axes = [1] gather_axis = 1 : tensor<1x2xf32> -> tensor<1x4xf32>
    %s = shard.all_reduce %x on @mesh grid_axes = [0] reduction = average : tensor<1x2xf32> -> tensor<1x2xf32>
    return %g, %s : tensor<1x4xf32>, tensor<1x2xf32>
  }
  func.func @lookup(%t: tensor<2xi32>) -> tensor<4x3xf32> {
    %e = llama.get_param @table : tensor<16x3xf32>
    %x = llama.embedding %e[%t] : tensor<16x3xf32>, tensor<2xi32>
    %g = shard.all_gather %x on @ring grid_axes = [0] gather_axis = 0 : tensor<2x3xf32> -> tensor<8x3xf32>
    %s = llama.slice %g dim 0 [0, 4] : tensor<8x3xf32>
    return %s : tensor<4x3xf32>
  }
  llama.param @table : tensor<16x3xf32> init normal(1.0)
}
)mlir";

class SimulatedRanksTest : public ::testing::Test {
protected:
  SimulatedRanksTest() {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
    module = mlir::parseSourceString<mlir::ModuleOp>(kProgram, &ctx);
  }
  llama::ModelOp model() { return *module->getOps<llama::ModelOp>().begin(); }
  std::function<std::unique_ptr<Interpreter>()> factory() {
    return [this] { return std::make_unique<Interpreter>(model(), Precision::F64, 0); };
  }
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

/// x_r[i, j] = 100 r + 10 i + j on rank r.
Tensor input(int r, int64_t rows, int64_t cols) {
  Tensor x(DType::F32, {rows, cols});
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      x[i * cols + j] = 100.0 * r + 10.0 * i + j;
  return x;
}

TEST_F(SimulatedRanksTest, CollectivesOnALineOfFourRanks) {
  ASSERT_TRUE(module);
  std::vector<std::vector<Tensor>> inputs, outputs;
  for (int r = 0; r < 4; ++r)
    inputs.push_back({input(r, 4, 3)});
  std::string error;
  ASSERT_TRUE(runSimulatedRanks(4, factory(), "line", inputs, outputs, &error)) << error;
  for (int r = 0; r < 4; ++r) {
    const Tensor &gathered = outputs[r][0], &sum = outputs[r][1], &scattered = outputs[r][2],
                 &max = outputs[r][3], &index = outputs[r][4];
    // all_gather: rank q's rows at rows 4q..4q+3, on every rank.
    for (int q = 0; q < 4; ++q)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 3; ++j)
          EXPECT_EQ(gathered[(4 * q + i) * 3 + j], 100.0 * q + 10.0 * i + j);
    // all_reduce sum: 100 (0+1+2+3) + 4 (10 i + j).
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(sum[i * 3 + j], 600.0 + 4.0 * (10.0 * i + j));
        EXPECT_EQ(max[i * 3 + j], 300.0 + 10.0 * i + j);
      }
    // reduce_scatter: rank r keeps row r of the sum.
    ASSERT_EQ(scattered.shape, (std::vector<int64_t>{1, 3}));
    for (int j = 0; j < 3; ++j)
      EXPECT_EQ(scattered[j], 600.0 + 4.0 * (10.0 * r + j));
    EXPECT_EQ(index[0], double(r));
  }
}

TEST_F(SimulatedRanksTest, GroupsFollowTheGridAxes) {
  ASSERT_TRUE(module);
  // Ranks on a 2x2 grid: r = 2 row + col. Axis 1 groups {0,1} and {2,3}; axis 0 groups
  // {0,2} and {1,3}.
  std::vector<std::vector<Tensor>> inputs, outputs;
  for (int r = 0; r < 4; ++r)
    inputs.push_back({input(r, 1, 2)});
  std::string error;
  ASSERT_TRUE(runSimulatedRanks(4, factory(), "square", inputs, outputs, &error)) << error;
  for (int r = 0; r < 4; ++r) {
    int row = r / 2, col = r % 2;
    const Tensor &g = outputs[r][0], &avg = outputs[r][1];
    for (int c = 0; c < 2; ++c)
      for (int j = 0; j < 2; ++j)
        EXPECT_EQ(g[c * 2 + j], 100.0 * (2 * row + c) + j);
    for (int j = 0; j < 2; ++j)
      EXPECT_EQ(avg[j], 100.0 * (col + 2 + col) / 2 + j);
  }
}

TEST_F(SimulatedRanksTest, OneProcessIsAGridOfOne) {
  ASSERT_TRUE(module);
  Interpreter interp(model(), Precision::F64, 0);
  std::vector<Tensor> out;
  std::string error;
  EXPECT_FALSE(interp.run("line", {input(0, 4, 3)}, out, &error));
  EXPECT_NE(error.find("grid @ring has 4 processes but the interpreter runs 1 rank(s)"),
            std::string::npos)
      << error;
}

TEST_F(SimulatedRanksTest, AFailingRankDoesNotHangTheOthers) {
  ASSERT_TRUE(module);
  std::vector<std::vector<Tensor>> inputs(4), outputs;
  for (int r = 0; r < 4; ++r) {
    Tensor t(DType::I32, {2}, 1.0);
    if (r == 2)
      t[1] = 99; // outside the vocabulary: rank 2 fails before the all_gather
    inputs[r] = {t};
  }
  std::string error;
  EXPECT_FALSE(runSimulatedRanks(4, factory(), "lookup", inputs, outputs, &error));
  EXPECT_NE(error.find("rank 2: "), std::string::npos) << error;
  EXPECT_NE(error.find("token id 99"), std::string::npos) << error;
}

TEST_F(SimulatedRanksTest, EveryRankSeesTheSameParameters) {
  ASSERT_TRUE(module);
  std::vector<std::vector<Tensor>> inputs(4, {Tensor(DType::I32, {2}, 3.0)}), outputs;
  std::string error;
  ASSERT_TRUE(runSimulatedRanks(4, factory(), "lookup", inputs, outputs, &error)) << error;
  for (int r = 1; r < 4; ++r)
    EXPECT_EQ(outputs[r][0].data, outputs[0][0].data);
}

} // namespace
