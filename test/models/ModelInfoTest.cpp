//===- ModelInfoTest.cpp - the model library against the published figures --------===//
#include "dialects/InitAllDialects.h"
#include "models/ModelInfo.h"
#include "passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace mlir;
using namespace llamac;

namespace {

struct Published {
  const char *file;
  double params; ///< as the paper or model card states it, in billions
  double digit;  ///< the unit of its last published digit, in billions
  int64_t exact; ///< the exact count of the architecture (Meta's and HF's checkpoints)
};

// Touvron et al. 2023 (Table 2), the LLaMA-2 model card, Jiang et al. 2023.
const Published kPublished[] = {
    {"llama1-7b", 6.7, 0.1, 6738415616},    {"llama1-13b", 13.0, 0.1, 13015864320},
    {"llama1-33b", 32.5, 0.1, 32528943616}, {"llama1-65b", 65.2, 0.1, 65285660672},
    {"llama2-7b", 6.7, 0.1, 6738415616},    {"llama2-13b", 13.0, 0.1, 13015864320},
    {"llama2-70b", 69.0, 0.1, 68976648192}, {"mistral-7b", 7.24, 0.01, 7241732096},
};

class ModelInfoTest : public ::testing::Test {
protected:
  ModelInfoTest() {
    DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  OwningOpRef<ModuleOp> load(const std::string &name) {
    std::string path = std::string(LLAMAC_SOURCE_DIR) + "/models/" + name + ".mlir";
    return parseSourceFile<ModuleOp>(path, &ctx);
  }

  static llama::ModelOp onlyModel(ModuleOp m) { return *m.getOps<llama::ModelOp>().begin(); }

  LogicalResult frontend(ModuleOp m, int64_t batch, int64_t seq) {
    PassManager pm(&ctx);
    FrontendPipelineOptions options;
    options.batch = batch;
    options.seq = seq;
    buildFrontendPipeline(pm, options);
    return pm.run(m);
  }

  MLIRContext ctx;
};

TEST_F(ModelInfoTest, ParameterCountsMatchThePublishedOnes) {
  for (const Published &p : kPublished) {
    SCOPED_TRACE(p.file);
    auto module = load(p.file);
    ASSERT_TRUE(module);
    ModelInfo info;
    countParameters(onlyModel(*module), info);
    EXPECT_EQ(info.numParams, p.exact);
    // Within one unit of the last digit the paper gives (it truncates: 65.28B is "65.2B").
    EXPECT_LT(std::abs(info.numParams / 1e9 - p.params), p.digit);
  }
}

TEST_F(ModelInfoTest, ExpansionDeclaresEveryParameterOnce) {
  for (const char *name : {"tiny", "stories15m", "llama2-70b"}) {
    SCOPED_TRACE(name);
    auto module = load(name);
    ASSERT_TRUE(module);
    ModelInfo declared;
    countParameters(onlyModel(*module), declared);
    ASSERT_TRUE(succeeded(frontend(*module, 1, 16)));
    llama::ModelOp expanded = onlyModel(*module);
    EXPECT_TRUE(expanded.getOps<llama::LayerOp>().empty());
    int64_t total = 0, tensors = 0;
    for (llama::ParamOp p : expanded.getOps<llama::ParamOp>()) {
      total += p.getTensorType().getNumElements();
      ++tensors;
    }
    EXPECT_EQ(total, declared.numParams);
    EXPECT_EQ(tensors, 3 + 9 * declared.numLayers);
  }
}

// The FLOPs measured op by op equal the closed form 6 N + 12 L H Dh T (PaLM, appendix B),
// where N counts the matmul parameters (everything but the embedding lookup and the norms).
TEST_F(ModelInfoTest, TrainingFlopsMatchTheClosedForm) {
  for (const char *name : {"tiny", "llama1-7b", "mistral-7b"}) {
    SCOPED_TRACE(name);
    auto module = load(name);
    ASSERT_TRUE(module);
    ModelInfo info;
    llama::ModelOp declared = onlyModel(*module);
    countParameters(declared, info);
    llama::ConfigAttr c = declared.getConfig();
    int64_t seq = std::min<int64_t>(c.getMaxSeqLen(), 256);
    ASSERT_TRUE(succeeded(frontend(*module, 2, seq)));
    ASSERT_TRUE(succeeded(measureForward(onlyModel(*module), info)));
    double norms = double(c.getDim()) * (2 * c.getNLayers() + 1);
    double n = double(info.numParams - info.numEmbeddingParams) - norms;
    double expected = 6.0 * n + 12.0 * c.getNLayers() * c.getNHeads() * c.getHeadDim() * seq;
    EXPECT_NEAR(info.trainingFlopsPerToken() / expected, 1.0, 1e-9);
    EXPECT_EQ(info.batch, 2);
    EXPECT_EQ(info.seq, seq);
    EXPECT_GT(info.activationBytes, 0);
  }
}

TEST_F(ModelInfoTest, HumanReadableFigures) {
  EXPECT_EQ(humanCount(6738415616.0), "6.74B");
  EXPECT_EQ(humanCount(24407712.0), "24.41M");
  EXPECT_EQ(humanCount(999.0), "999.0");
  EXPECT_EQ(humanBytes(1024.0 * 1024.0 * 1.5), "1.5 MiB");
}

} // namespace
