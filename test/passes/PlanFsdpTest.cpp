//===- PlanFsdpTest.cpp - llamac-plan-fsdp against the unsharded program ------------===//
//
// The sharded training program of the tiny model, run by the interpreter on N simulated
// ranks (threads exchanging tensors: runtime/interpreter/SimulatedRanks.h), against the
// unsharded program run in one interpreter on the same N micro-batches: every rank's loss,
// the learning rate and gradient norm of each step, and, after two optimizer steps, every
// weight (gathered back from the shards) agree to f64 rounding. N = 3 pads every unit; 4
// ranks as 2 replicas of 2 run hybrid sharding (a 2-D grid), whose replicas stay identical.
//
//===----------------------------------------------------------------------------------===//
#include "dialects/InitAllDialects.h"
#include "passes/Passes.h"
#include "runtime/interpreter/Equivalence.h"
#include "runtime/interpreter/Interpreter.h"
#include "runtime/interpreter/SimulatedRanks.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <thread>

using namespace llamac;

namespace {

/// N ranks in R replicas of G (R = 1: plain FSDP; R > 1: hybrid sharding, a 2-D grid); with
/// bf16, mixed precision (llamac-mixed-precision: units gathered in bf16), run in f32.
struct Ranks {
  int N, R;
  bool bf16;
};

class PlanFsdp : public ::testing::TestWithParam<Ranks> {
protected:
  PlanFsdp() {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
    static bool registered = [] {
      mlir::registerTransformsPasses();
      registerLlamacPassesAndPipelines();
      return true;
    }();
    (void)registered;
  }

  mlir::OwningOpRef<mlir::ModuleOp> compile(const std::string &pipeline) {
    auto m = mlir::parseSourceFile<mlir::ModuleOp>(
        std::string(LLAMAC_SOURCE_DIR) + "/models/tiny.mlir", &ctx);
    EXPECT_TRUE(m);
    mlir::PassManager pm(&ctx, mlir::ModuleOp::getOperationName());
    std::string err;
    llvm::raw_string_ostream os(err);
    EXPECT_TRUE(mlir::succeeded(mlir::parsePassPipeline(pipeline, pm, os))) << err;
    EXPECT_TRUE(mlir::succeeded(pm.run(*m)));
    return m;
  }
  static llama::ModelOp model(mlir::ModuleOp m) { return *m.getOps<llama::ModelOp>().begin(); }

  mlir::MLIRContext ctx;
};

double relative(double a, double b) {
  return std::fabs(a - b) / std::max(1e-30, std::max(std::fabs(a), std::fabs(b)));
}

/// A shard's layout, from its llama.fsdp attribute.
struct Layout {
  std::vector<std::string> members;
  std::vector<int64_t> offsets;
  int64_t padded = 0;
};

Layout layoutOf(llama::ParamOp p) {
  Layout l;
  auto d = p->getAttrOfType<mlir::DictionaryAttr>("llama.fsdp");
  for (mlir::Attribute a : mlir::cast<mlir::ArrayAttr>(d.get("members")))
    l.members.push_back(mlir::cast<mlir::StringAttr>(a).str());
  for (int64_t o : mlir::cast<mlir::DenseI64ArrayAttr>(d.get("offsets")).asArrayRef())
    l.offsets.push_back(o);
  l.padded = mlir::cast<mlir::IntegerAttr>(d.get("padded")).getInt();
  return l;
}

TEST_P(PlanFsdp, SimulatedRanksTrainAsTheUnshardedProgram) {
  const auto [N, R, bf16] = GetParam();
  const int G = N / R;
  const int64_t B = 2, T = 8, kSteps = 2;
  const std::string precision = bf16 ? " precision=bf16" : "";
  auto plain = compile("llamac-training{batch=2 seq=8" + precision + "}");
  auto sharded = compile("llamac-training{batch=2 seq=8 fsdp=" + std::to_string(N) +
                         " fsdp-replicas=" + std::to_string(R) + precision + "}");
  // f64 sums agree to rounding; mixed precision runs in f32, where the ranks' gradient
  // sums in another order than one process's accumulation.
  const Precision arithmetic = bf16 ? Precision::F32 : Precision::F64;
  const double lossTol = bf16 ? 1e-6 : 1e-12, normTol = bf16 ? 1e-5 : 1e-9,
               weightTol = bf16 ? 1e-5 : 1e-9;
  llama::ModelOp u = model(*plain), s = model(*sharded);
  ASSERT_FALSE(s.lookupFunction("loss_grad")) << "the per-weight gradient function goes";

  // Inputs of every (step, rank), and the update's scalars.
  std::vector<std::vector<std::vector<Tensor>>> batches(kSteps);
  for (int64_t step = 0; step < kSteps; ++step)
    for (int r = 0; r < N; ++r)
      batches[step].push_back(
          randomInputs(u.lookupFunction("train_grad"), 512, B, T, uint64_t(100 * step + r)));
  auto update = [&](int64_t step) {
    return std::vector<Tensor>{Tensor(DType::I64, {}, double(step)),
                               Tensor(DType::F32, {}, 3e-2), Tensor(DType::I64, {}, 10.0),
                               Tensor(DType::F32, {}, double(N))};
  };

  // The unsharded program: N micro-batches accumulated, then the update.
  Interpreter one(u, arithmetic, 11);
  std::map<std::string, Tensor> initial;
  for (const ParamDecl &d : one.parameters())
    initial[d.name] = *one.parameter(d.name);
  std::vector<std::vector<double>> losses(kSteps), scalars(kSteps);
  std::string error;
  for (int64_t step = 0; step < kSteps; ++step) {
    for (int r = 0; r < N; ++r) {
      std::vector<Tensor> out;
      ASSERT_TRUE(one.run("train_grad", batches[step][r], out, &error)) << error;
      losses[step].push_back(out[0][0]);
    }
    std::vector<Tensor> out;
    ASSERT_TRUE(one.run("train_update", update(step), out, &error)) << error;
    scalars[step] = {out[0][0], out[1][0]};
  }

  // The sharded one on N simulated ranks, each starting from its shard of the same weights.
  std::vector<llama::ParamOp> shards;
  for (llama::ParamOp p : s.getOps<llama::ParamOp>())
    if (p->hasAttr("llama.fsdp") && !p.getState())
      shards.push_back(p);
  ASSERT_FALSE(shards.empty());
  SimulatedGroup group(N);
  std::vector<std::unique_ptr<Interpreter>> ranks;
  for (int r = 0; r < N; ++r) {
    ranks.push_back(std::make_unique<Interpreter>(s, arithmetic, 11));
    ranks.back()->attach(&group, r);
    for (llama::ParamOp p : shards) {
      Layout l = layoutOf(p);
      std::vector<double> flat(size_t(l.padded), 0.0);
      for (size_t m = 0; m < l.members.size(); ++m) {
        const Tensor &w = initial.at(l.members[m]);
        std::copy(w.data.begin(), w.data.end(), flat.begin() + l.offsets[m]);
      }
      // Rank r holds block r mod G of the unit (grid coordinates (r / G, r mod G)).
      int64_t n = l.padded / G, k = r % G;
      Tensor mine(DType::F32, {n});
      std::copy(flat.begin() + k * n, flat.begin() + (k + 1) * n, mine.data.begin());
      ASSERT_TRUE(ranks.back()->setParameter(p.getSymName().str(), mine, &error)) << error;
    }
  }
  std::vector<std::vector<std::vector<double>>> got(N);
  std::vector<std::string> errors(N);
  std::vector<std::thread> threads;
  for (int r = 0; r < N; ++r)
    threads.emplace_back([&, r] {
      for (int64_t step = 0; step < kSteps; ++step) {
        std::vector<Tensor> g, up;
        if (!ranks[r]->run("train_grad", batches[step][r], g, &errors[r]) ||
            !ranks[r]->run("train_update", update(step), up, &errors[r])) {
          group.abort("rank " + std::to_string(r) + " failed");
          return;
        }
        got[r].push_back({g[0][0], up[0][0], up[1][0]});
      }
    });
  for (std::thread &t : threads)
    t.join();
  for (int r = 0; r < N; ++r)
    ASSERT_TRUE(errors[r].empty()) << "rank " << r << ": " << errors[r];

  for (int64_t step = 0; step < kSteps; ++step)
    for (int r = 0; r < N; ++r) {
      ASSERT_EQ(got[r].size(), size_t(kSteps));
      // train_grad's loss: summed over the ranks' micro-batches.
      double sum = 0;
      for (double l : losses[step])
        sum += l;
      EXPECT_LT(relative(got[r][step][0], sum), lossTol) << "loss, step " << step;
      EXPECT_LT(relative(got[r][step][1], scalars[step][0]), 1e-12) << "lr, step " << step;
      EXPECT_LT(relative(got[r][step][2], scalars[step][1]), normTol) << "norm, step " << step;
    }

  // Every weight after two steps, gathered back from the ranks' shards.
  int compared = 0;
  double worstWeight = 0;
  for (llama::ParamOp p : shards) {
    Layout l = layoutOf(p);
    std::vector<double> flat;
    for (int r = 0; r < G; ++r) {
      const Tensor *mine = ranks[r]->parameter(p.getSymName().str());
      ASSERT_TRUE(mine);
      flat.insert(flat.end(), mine->data.begin(), mine->data.end());
      // Its replicas hold the same values, bit for bit.
      for (int q = r + G; q < N; q += G)
        EXPECT_EQ(ranks[q]->parameter(p.getSymName().str())->data, mine->data)
            << p.getSymName().str() << ": rank " << q << " differs from its replica " << r;
    }
    ASSERT_EQ(int64_t(flat.size()), l.padded);
    for (size_t m = 0; m < l.members.size(); ++m) {
      const Tensor *want = one.parameter(l.members[m]);
      ASSERT_TRUE(want) << l.members[m];
      double worst = 0, scale = 0;
      for (int64_t i = 0; i < want->numElements(); ++i) {
        worst = std::max(worst, std::fabs(flat[size_t(l.offsets[m] + i)] - (*want)[i]));
        scale = std::max(scale, std::fabs((*want)[i]));
      }
      EXPECT_LT(worst / scale, weightTol) << l.members[m];
      worstWeight = std::max(worstWeight, worst / scale);
      EXPECT_GT(std::fabs((*want)[0] - initial.at(l.members[m])[0]) +
                    std::fabs((*want)[1] - initial.at(l.members[m])[1]),
                0.0)
          << l.members[m] << " did not train";
      ++compared;
    }
    // The padding stays zero.
    int64_t end = l.offsets.back() + initial.at(l.members.back()).numElements();
    for (int64_t i = end; i < l.padded; ++i)
      EXPECT_EQ(flat[size_t(i)], 0.0) << p.getSymName().str() << " padding";
  }
  EXPECT_EQ(compared, 21); // every weight of the tiny model
  std::printf("largest relative weight difference: %.3g\n", worstWeight);
}

INSTANTIATE_TEST_SUITE_P(Ranks, PlanFsdp,
                         ::testing::Values(Ranks{2, 1, false}, Ranks{3, 1, false},
                                           Ranks{4, 2, false}, Ranks{2, 1, true},
                                           Ranks{4, 2, true}),
                         [](const ::testing::TestParamInfo<Ranks> &info) {
                           return std::to_string(info.param.N) + "ranks" +
                                  std::to_string(info.param.R) + "replicas" +
                                  (info.param.bf16 ? "Bf16" : "");
                         });

} // namespace
