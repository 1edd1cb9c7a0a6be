//===- llamac.cpp - the user-facing driver -----------------------------------------===//
//
// `llamac <command> [options]`. Each command lives in its own file (Info.cpp, ...) and
// declares its options in its own cl::SubCommand.
//
//===----------------------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "test/lib/TestPasses.h"
#include "tools/llamac/Driver.h"

#include "mlir/Transforms/Passes.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

using namespace llamac::driver;

static void printVersion(llvm::raw_ostream &os) {
  os << "llamac 0.1 (MLIR " << LLVM_VERSION_STRING << ")\n";
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerTransformsPasses();
  llamac::registerLlamacPassesAndPipelines();
  llamac::registerTestPasses();
  llvm::cl::SetVersionPrinter(printVersion);
  for (llvm::cl::SubCommand *sub :
       {&llvm::cl::SubCommand::getTopLevel(), &infoCommand(), &compileCommand(),
        &runCommand(), &checkCommand(), &bisectCommand(), &tokenizerCommand(), &tuneCommand(),
        &planCommand()})
    llvm::cl::HideUnrelatedOptions(optionCategory(), *sub);
  if (!llvm::cl::ParseCommandLineOptions(
          argc, argv,
          "llamac: compile and inspect LLaMA-family models\n\n"
          "  llamac info model.mlir [--batch N] [--seq T]\n"
          "  llamac compile model.mlir [--batch N] [--seq T] [-o out.mlir]\n"
          "  llamac compile model.mlir --mode train|infer [--tuning-db DB] -o exe\n"
          "  llamac tune model.mlir --mode train|infer [--space quick] -o DB\n"
          "  llamac plan model.mlir --devices N --device a100-80gb [--strategy hybrid]\n"
          "  llamac run model.mlir [--function F] [--inputs in.safetensors] [-o out]\n"
          "  llamac check model.mlir --pipeline PASSES [--tol X]\n"
          "  llamac bisect model.mlir --pipeline PASSES [--dump-dir DIR]\n"
          "  llamac tokenizer train corpus.txt --vocab N -o tok.model\n"
          "  llamac tokenizer encode|decode --model tok.model TEXT|IDS\n\n"
          "Run `llamac <command> --help` for a command's options.\n"))
    return 1;
  if (infoCommand())
    return runInfo();
  if (compileCommand())
    return runCompile();
  if (runCommand())
    return runRun();
  if (checkCommand())
    return runCheck();
  if (bisectCommand())
    return runBisect();
  if (tokenizerCommand())
    return runTokenizer();
  if (tuneCommand())
    return runTune();
  if (planCommand())
    return runPlan();
  return error("no command given; run `llamac --help`");
}
