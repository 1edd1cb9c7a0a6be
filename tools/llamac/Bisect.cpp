//===- Bisect.cpp - `llamac bisect` ------------------------------------------------===//
//
// Runs --pipeline one pass at a time, compares the model's outputs after each pass with
// those of the original IR, and names the first pass after which an output moves beyond
// --tol, writing the IR before and after that pass to --dump-dir.
//
//===----------------------------------------------------------------------------------===//

#include "runtime/interpreter/Equivalence.h"
#include "tools/llamac/Driver.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<std::string> dumpDir("dump-dir",
                                    cl::desc("Where to write the IR before and after the "
                                             "culprit pass (default: llamac-bisect)"),
                                    cl::value_desc("dir"), cl::init("llamac-bisect"),
                                    cl::sub(llamac::driver::bisectCommand()),
                                    cl::cat(llamac::driver::optionCategory()));

namespace llamac::driver {
int printDifferences(const std::vector<OutputDifference> &diffs, double tolerance);
EquivalenceOptions equivalenceOptions(const ModelArgs &args, const ExecArgs &exec,
                                      llama::ModelOp model);

static std::string textOf(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  op->print(os);
  return s;
}

static bool writeText(const std::string &path, const std::string &text) {
  std::string message;
  auto out = openOutputFile(path, &message);
  if (!out) {
    error("cannot write '" + path + "': " + message);
    return false;
  }
  out->os() << text;
  out->keep();
  return true;
}

int runBisect() {
  ModelArgs args = modelArgs();
  ExecArgs exec = execArgs();
  if (exec.pipeline.empty())
    return error("bisect needs --pipeline");
  if (args.batch <= 0 || args.seq < 0 || !(exec.tolerance >= 0))
    return error("--batch must be positive, --seq and --tol non-negative");
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> original = loadModule(args.input, *ctx);
  if (!original)
    return 1;
  llama::ModelOp model = selectModel(*original, args.input, args.model);
  if (!model)
    return 1;

  // The pipeline, split into its top-level passes (named pipelines are expanded).
  PassManager whole(ctx.get(), ModuleOp::getOperationName());
  if (failed(parsePipeline(exec.pipeline, whole)))
    return 1;
  std::vector<std::string> steps;
  for (Pass &pass : whole.getPasses()) {
    std::string s;
    llvm::raw_string_ostream os(s);
    pass.printAsTextualPipeline(os);
    steps.push_back(s);
  }

  EquivalenceOptions options = equivalenceOptions(args, exec, model);
  std::vector<std::vector<Tensor>> reference;
  std::vector<std::string> names;
  std::string err;
  if (!runAllFunctions(model, options, model, reference, names, &err))
    return error("the original IR does not run: " + err);

  llvm::outs() << "bisect @" << model.getSymName() << ": " << steps.size() << " passes\n";
  OwningOpRef<ModuleOp> current = original->clone();
  for (size_t k = 0; k < steps.size(); ++k) {
    std::string before = textOf(*current);
    PassManager one(ctx.get(), ModuleOp::getOperationName());
    if (failed(parsePipeline(steps[k], one)))
      return 1;
    llvm::outs() << "[" << k + 1 << "/" << steps.size() << "] " << steps[k] << "\n";
    if (failed(one.run(*current)))
      return error("pass " + Twine(k + 1) + " (" + steps[k] + ") failed");
    auto now = dyn_cast_or_null<llama::ModelOp>(
        SymbolTable::lookupSymbolIn(*current, model.getSymNameAttr()));
    std::vector<std::vector<Tensor>> outputs;
    std::vector<std::string> unused;
    if (!now || !runAllFunctions(now, options, model, outputs, unused, &err))
      return error("after pass " + Twine(k + 1) + " (" + steps[k] + ") the IR does not run: " +
                   (now ? err : "model removed"));
    std::vector<OutputDifference> diffs = diffOutputs(names, reference, outputs);
    if (printDifferences(diffs, exec.tolerance) == 0)
      continue;
    if (std::error_code ec = llvm::sys::fs::create_directories(dumpDir))
      return error("cannot create '" + dumpDir + "': " + ec.message());
    std::string stem = (Twine(k + 1) + "-" + StringRef(steps[k]).take_until([](char c) {
                          return c == '{' || c == '(';
                        })).str();
    SmallString<128> beforePath(dumpDir), afterPath(dumpDir);
    llvm::sys::path::append(beforePath, stem + ".before.mlir");
    llvm::sys::path::append(afterPath, stem + ".after.mlir");
    if (!writeText(beforePath.str().str(), before) ||
        !writeText(afterPath.str().str(), textOf(*current)))
      return 1;
    llvm::outs() << "first pass beyond tolerance: " << steps[k] << " (pass " << k + 1 << " of "
                 << steps.size() << ")\n"
                 << "  IR before: " << beforePath << "\n"
                 << "  IR after:  " << afterPath << "\n";
    return 1;
  }
  llvm::outs() << "no pass moves the outputs beyond tolerance\n";
  return 0;
}

} // namespace llamac::driver
