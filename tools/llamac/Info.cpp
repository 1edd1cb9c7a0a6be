//===- Info.cpp - `llamac info` ----------------------------------------------------===//
//
// Parameters are counted on the model as declared; FLOPs and activations are measured on
// the llamac-frontend output at the requested batch and sequence length.
//
//===----------------------------------------------------------------------------------===//

#include "models/ModelInfo.h"
#include "tools/llamac/Driver.h"

#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace llamac;

int llamac::driver::runInfo() {
  ModelArgs args = modelArgs();
  if (args.batch <= 0 || args.seq < 0)
    return error("--batch must be positive and --seq non-negative");
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp declared = selectModelForSeq(*module, args);
  if (!declared)
    return 1;
  ModelInfo info;
  countParameters(declared, info);
  std::string name = declared.getSymName().str();
  if (failed(runFrontend(*module, args.batch, args.seq)))
    return 1;
  auto expanded = dyn_cast_or_null<llama::ModelOp>(
      SymbolTable::lookupSymbolIn(*module, StringAttr::get(ctx.get(), name)));
  if (!expanded || failed(measureForward(expanded, info)) ||
      failed(measureRemat(*module, info)) || failed(measureTraffic(*module, info)))
    return 1;
  printModelInfo(info, llvm::outs());
  return 0;
}
