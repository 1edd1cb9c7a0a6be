//===- Compile.cpp - `llamac compile` ----------------------------------------------===//
//
// Runs the pipeline that exists today (llamac-frontend: expand layers, specialise batch
// and sequence) and prints a summary; -o writes the resulting tensor-level IR. Later
// stages (autodiff, fusion, code generation) extend this command.
//
//===----------------------------------------------------------------------------------===//

#include "tools/llamac/Driver.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/ToolOutputFile.h"

#include <chrono>

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<std::string> outputFile("o", cl::desc("Write the compiled IR to this file"),
                                       cl::value_desc("file"),
                                       cl::sub(driver::compileCommand()),
                                       cl::cat(driver::optionCategory()));

int llamac::driver::runCompile() {
  ModelArgs args = modelArgs();
  if (args.batch <= 0 || args.seq < 0)
    return error("--batch must be positive and --seq non-negative");
  auto start = std::chrono::steady_clock::now();
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp declared = selectModel(*module, args.input, args.model);
  if (!declared)
    return 1;
  if (args.seq > declared.getConfig().getMaxSeqLen())
    return error("--seq " + Twine(args.seq) + " exceeds the context of @" +
                 declared.getSymName() + " (" +
                 Twine(declared.getConfig().getMaxSeqLen()) + ")");
  std::string name = declared.getSymName().str();
  int64_t layers = 0;
  for (llama::LayerOp l : declared.getOps<llama::LayerOp>())
    layers += l.getRepeat();
  if (failed(runFrontend(*module, args.batch, args.seq)))
    return 1;
  auto model = cast<llama::ModelOp>(
      SymbolTable::lookupSymbolIn(*module, StringAttr::get(ctx.get(), name)));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                        start)
                  .count();

  if (!outputFile.empty()) {
    std::string message;
    auto out = openOutputFile(outputFile, &message);
    if (!out)
      return error("cannot write '" + outputFile + "': " + message);
    module->print(out->os());
    out->keep();
  }

  int64_t params = 0;
  for (llama::ParamOp p : model.getOps<llama::ParamOp>())
    params += p.getTensorType().getNumElements();
  llvm::outs() << "compiled @" << name << " from " << args.input << " in "
               << llvm::format("%.1f ms", ms) << "\n";
  llvm::outs() << "  layers expanded: " << layers << ", parameters: "
               << llvm::range_size(model.getOps<llama::ParamOp>()) << " tensors, " << params
               << " elements\n";
  for (func::FuncOp f : model.getOps<func::FuncOp>()) {
    int64_t ops = 0;
    f.walk([&](Operation *) { ++ops; });
    llvm::outs() << "  @" << f.getSymName() << " : " << f.getFunctionType() << ", " << ops
                 << " ops\n";
  }
  if (!outputFile.empty())
    llvm::outs() << "  wrote " << outputFile << "\n";
  return 0;
}
