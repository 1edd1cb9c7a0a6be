//===- llamac-opt.cpp - mlir-opt for llamac ----------------------------------------===//
//
// Every dialect and pass of the project plus MLIR's generic transforms, so that
// --mlir-print-ir-after-all, --mlir-timing, --pass-pipeline and -verify-diagnostics work.
//
//===----------------------------------------------------------------------------------===//

#include "dialects/InitAllDialects.h"
#include "passes/Passes.h"
#include "test/lib/TestPasses.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  llamac::registerAllDialects(registry);
  mlir::registerTransformsPasses();
  llamac::registerLlamacPassesAndPipelines();
  llamac::registerTestPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "llamac optimizer driver\n", registry));
}
