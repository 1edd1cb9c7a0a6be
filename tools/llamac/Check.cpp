//===- Check.cpp - `llamac check` --------------------------------------------------===//
//
// The pass equivalence check: the model's public functions before and after --pipeline,
// on the same seeded parameters and inputs; per output, the largest absolute and relative
// difference, and a failure above --tol.
//
//===----------------------------------------------------------------------------------===//

#include "runtime/interpreter/Equivalence.h"
#include "tools/llamac/Driver.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace llamac;

namespace llamac::driver {

/// One line per output; returns how many are beyond the tolerance.
int printDifferences(const std::vector<OutputDifference> &diffs, double tolerance) {
  int bad = 0;
  for (const OutputDifference &d : diffs) {
    bool ok = !d.mismatchedShape && d.maxRel <= tolerance;
    bad += !ok;
    llvm::outs() << llvm::format("  @%-12s result%u %-20s max abs %.3e  max rel %.3e  %s\n",
                                 d.function.c_str(), d.index, d.shape.c_str(), d.maxAbs,
                                 d.maxRel, ok ? "ok" : "BEYOND TOLERANCE");
  }
  return bad;
}

EquivalenceOptions equivalenceOptions(const ModelArgs &args, const ExecArgs &exec,
                                      llama::ModelOp model) {
  EquivalenceOptions o;
  o.precision = exec.f64 ? Precision::F64 : Precision::F32;
  o.seed = exec.seed;
  o.batch = args.batch;
  o.seq = args.seq ? args.seq : model.getConfig().getMaxSeqLen();
  o.function = exec.function;
  return o;
}

int runCheck() {
  ModelArgs args = modelArgs();
  ExecArgs exec = execArgs();
  if (exec.pipeline.empty())
    return error("check needs --pipeline");
  if (args.batch <= 0 || args.seq < 0 || !(exec.tolerance >= 0))
    return error("--batch must be positive, --seq and --tol non-negative");
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> before = loadModule(args.input, *ctx);
  if (!before)
    return 1;
  llama::ModelOp model = selectModel(*before, args.input, args.model);
  if (!model)
    return 1;
  OwningOpRef<ModuleOp> after = before->clone();
  PassManager pm(ctx.get(), ModuleOp::getOperationName());
  if (failed(parsePipeline(exec.pipeline, pm)) || failed(pm.run(*after)))
    return 1;
  auto transformed =
      dyn_cast_or_null<llama::ModelOp>(SymbolTable::lookupSymbolIn(*after, model.getSymNameAttr()));
  if (!transformed)
    return error("the pipeline removed model @" + model.getSymName());

  EquivalenceOptions options = equivalenceOptions(args, exec, model);
  llvm::outs() << "check @" << model.getSymName() << ": pipeline '" << exec.pipeline << "', "
               << (exec.f64 ? "f64" : "f32") << ", seed " << options.seed << ", batch "
               << options.batch << ", seq " << options.seq << ", tolerance "
               << llvm::format("%g", exec.tolerance) << "\n";
  std::vector<OutputDifference> diffs;
  std::string err;
  if (!compareModels(model, transformed, options, diffs, &err))
    return error(err);
  int bad = printDifferences(diffs, exec.tolerance);
  if (bad) {
    llvm::outs() << "NOT equivalent: " << bad << " of " << diffs.size()
                 << " outputs beyond tolerance\n";
    return 1;
  }
  llvm::outs() << "equivalent: " << diffs.size() << " outputs within tolerance\n";
  return 0;
}

} // namespace llamac::driver
