//===- Compile.cpp - `llamac compile` ----------------------------------------------===//
//
// Without --mode: the front end (expand layers, specialise batch and sequence) and a
// summary; -o writes the tensor-level IR.
//
// With --mode train|infer: the whole way to an executable.
//   train  llamac-training (autodiff, remat, train step, fusions) at (batch, seq); lowers
//          @train_grad, @train_update, @loss, @forward and @loss_grad
//   infer  llamac-inference at three shapes of one row: @prefill (chunk = --seq, KV cache),
//          @decode (one token, KV cache) and @forward (the whole context, no cache)
// then the kernel-level IR (codegen/Lower.h), the target emitter (codegen/CpuEmitter.h) and
// the host C++ compiler, linking the runtime. --emit stops earlier: `kernels` prints the
// kernel-level IR, `cpp` writes the generated source, `mlir` the lowered tensor IR.
// The executable is written to a temporary file beside -o and renamed over it only when
// everything succeeded, so a failed compile leaves what was there.
//
//===----------------------------------------------------------------------------------===//

#include "tools/llamac/Driver.h"

#include "codegen/CpuEmitter.h"
#include "codegen/CudaEmitter.h"
#include "tools/llamac/HostToolchain.h"
#include "codegen/KernelIR.h"
#include "codegen/Lower.h"
#include "codegen/Tunables.h"
#include "codegen/TuningDB.h"
#include "models/ModelInfo.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ToolOutputFile.h"

#include <chrono>
#include <thread>

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<std::string> outputFile("o", cl::desc("Output file"), cl::value_desc("file"),
                                       cl::sub(driver::compileCommand()),
                                       cl::cat(driver::optionCategory()));
static cl::opt<std::string> target("target", cl::desc("Code generation target: cpu or cuda"),
                                   cl::init("cpu"), cl::sub(driver::compileCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> mode("mode",
                                 cl::desc("Generate a program: train or infer (without it, "
                                          "print the front end's summary)"),
                                 cl::sub(driver::compileCommand()),
                                 cl::cat(driver::optionCategory()));
static cl::opt<std::string> emit("emit",
                                 cl::desc("With --mode: exe (default), cpp, kernels or mlir"),
                                 cl::init("exe"), cl::sub(driver::compileCommand()),
                                 cl::cat(driver::optionCategory()));
static cl::opt<int64_t> warmup("warmup", cl::desc("Learning-rate warm-up steps (train)"),
                               cl::init(100), cl::sub(driver::compileCommand()),
                               cl::cat(driver::optionCategory()));
static cl::opt<double> lrFloor("lr-floor",
                               cl::desc("Final learning rate as a fraction of the peak"),
                               cl::init(0.1), cl::sub(driver::compileCommand()),
                               cl::cat(driver::optionCategory()));
static cl::opt<double> weightDecay("weight-decay", cl::desc("AdamW weight decay"),
                                   cl::init(0.1), cl::sub(driver::compileCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<double> maxGradNorm("max-grad-norm", cl::desc("Gradient clipping norm"),
                                   cl::init(1.0), cl::sub(driver::compileCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> remat("remat",
                                  cl::desc("Rematerialisation policy (see llamac-remat)"),
                                  cl::init("none"), cl::sub(driver::compileCommand()),
                                  cl::cat(driver::optionCategory()));
static cl::opt<std::string> weights("weights",
                                    cl::desc("Inference weight storage: f32 (default) or int8 "
                                             "(per-row scales; linear layers only)"),
                                    cl::init("f32"), cl::sub(driver::compileCommand()),
                                    cl::cat(driver::optionCategory()));
static cl::opt<std::string> tuningDb("tuning-db",
                                     cl::desc("Set tunable kernel parameters from this tuning "
                                              "database (written by llamac tune)"),
                                     cl::value_desc("file"), cl::sub(driver::compileCommand()),
                                     cl::cat(driver::optionCategory()));
static cl::opt<std::string> tuningDevice(
    "tuning-device",
    cl::desc("--target cuda: the GPU whose --tuning-db entries to use, as a part of its "
             "description (e.g. H100); needed when the database has several GPUs"),
    cl::value_desc("text"), cl::sub(driver::compileCommand()), cl::cat(driver::optionCategory()));
static cl::opt<std::string> cxx("cxx", cl::desc("Host C++ compiler"),
                                cl::init(LLAMAC_HOST_CXX), cl::sub(driver::compileCommand()),
                                cl::cat(driver::optionCategory()));
static cl::opt<std::string> nvcc("nvcc", cl::desc("CUDA compiler (--target cuda)"),
                                 cl::init(LLAMAC_NVCC), cl::sub(driver::compileCommand()),
                                 cl::cat(driver::optionCategory()));
static cl::opt<std::string> cudaArch("cuda-arch",
                                     cl::desc("GPU architectures to build for, comma-separated "
                                              "(--target cuda; sm_80 or newer)"),
                                     cl::init("sm_80,sm_90"), cl::sub(driver::compileCommand()),
                                     cl::cat(driver::optionCategory()));
static cl::opt<std::string> precision(
    "precision",
    cl::desc("Matrix products: bf16 (the default for --target cuda; training in mixed "
             "precision: bf16 operands and results, f32 sums, master weights, optimizer "
             "state, norms and losses; inference: bf16 products on f32 storage, CUDA only), "
             "tf32 (--target cuda: TF32 tensor cores on f32 storage) or f32 (the default "
             "for --target cpu)"),
    cl::init("bf16"), cl::sub(driver::compileCommand()), cl::cat(driver::optionCategory()));
static cl::opt<int64_t> fsdp("fsdp",
                             cl::desc("Shard weights, gradients and optimizer state over this "
                                      "many data-parallel ranks (llamac-plan-fsdp); the program "
                                      "then runs under mpirun -np N"),
                             cl::init(0), cl::sub(driver::compileCommand()),
                             cl::cat(driver::optionCategory()));
static cl::opt<int64_t> fsdpReplicas("fsdp-replicas",
                                     cl::desc("With --fsdp N: shard within groups of N/R "
                                              "ranks and replicate across the R groups "
                                              "(hybrid sharding, a 2-D grid)"),
                                     cl::init(1), cl::sub(driver::compileCommand()),
                                     cl::cat(driver::optionCategory()));
static cl::opt<int64_t> fsdpPrefetch("fsdp-prefetch",
                                     cl::desc("With --fsdp: gather each unit this many units "
                                              "ahead of its use (0: just before it)"),
                                     cl::init(1), cl::sub(driver::compileCommand()),
                                     cl::cat(driver::optionCategory()));
static cl::opt<bool> keepSource("keep-source",
                                cl::desc("Keep the generated source beside the executable"),
                                cl::sub(driver::compileCommand()),
                                cl::cat(driver::optionCategory()));

namespace {

int summary(const driver::ModelArgs &args, MLIRContext &ctx, ModuleOp module,
            llama::ModelOp declared, double startMs) {
  std::string name = declared.getSymName().str();
  int64_t layers = 0;
  for (llama::LayerOp l : declared.getOps<llama::LayerOp>())
    layers += l.getRepeat();
  if (failed(driver::runFrontend(module, args.batch, args.seq)))
    return 1;
  auto model = cast<llama::ModelOp>(
      SymbolTable::lookupSymbolIn(module, StringAttr::get(&ctx, name)));
  if (!outputFile.empty()) {
    std::string message;
    auto out = openOutputFile(outputFile, &message);
    if (!out)
      return driver::error("cannot write '" + outputFile + "': " + message);
    module.print(out->os());
    out->keep();
  }
  int64_t params = 0;
  for (llama::ParamOp p : model.getOps<llama::ParamOp>())
    params += p.getTensorType().getNumElements();
  llvm::outs() << "compiled @" << name << " from " << args.input << " in "
               << llvm::format("%.1f ms", startMs) << "\n";
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

/// A copy of `module` run through `pipeline`; null (diagnostics printed) on failure.
OwningOpRef<ModuleOp> lowerCopy(ModuleOp module, llvm::function_ref<void(OpPassManager &)> build) {
  OwningOpRef<ModuleOp> copy = module.clone();
  PassManager pm(module.getContext());
  build(pm);
  if (failed(pm.run(*copy)))
    return nullptr;
  return copy;
}

llama::ModelOp findModel(ModuleOp module, StringRef name) {
  return dyn_cast_or_null<llama::ModelOp>(
      SymbolTable::lookupSymbolIn(module, StringAttr::get(module.getContext(), name)));
}

func::FuncOp findFunc(llama::ModelOp model, StringRef name) {
  for (func::FuncOp f : model.getOps<func::FuncOp>())
    if (f.getSymName() == name)
      return f;
  return nullptr;
}

} // namespace

bool llamac::driver::buildKernelProgram(ModuleOp module, StringRef name,
                                        const BuildSettings &s, kir::Program &program) {
  int64_t batch = s.batch, seq = s.seq;
  program.mode = s.mode;
  program.target = s.target;
  llama::ModelOp declared = findModel(module, name);
  int64_t context = declared.getConfig().getMaxSeqLen();

  // FLOPs per token from the forward pass at the training shape (ModelInfo's convention).
  {
    OwningOpRef<ModuleOp> expanded = lowerCopy(module, [&](OpPassManager &pm) {
      FrontendPipelineOptions o;
      o.batch = 1;
      o.seq = seq;
      buildFrontendPipeline(pm, o);
    });
    if (!expanded)
      return false;
    ModelInfo info;
    info.name = name.str();
    info.batch = 1;
    info.seq = seq;
    if (failed(measureForward(findModel(*expanded, name), info)))
      return false;
    program.trainFlopsPerToken = info.trainingFlopsPerToken();
    program.inferFlopsPerToken = info.matmulFlops / info.tokens();
  }

  if (s.mode == "train") {
    program.batch = batch;
    program.seq = seq;
    OwningOpRef<ModuleOp> lowered = lowerCopy(module, [&](OpPassManager &pm) {
      TrainingPipelineOptions o;
      o.batch = batch;
      o.seq = seq;
      o.precision = s.precision == "bf16" ? "bf16" : "f32";
      o.warmup = s.warmup;
      o.floor = s.lrFloor;
      o.weightDecay = s.weightDecay;
      o.maxGradNorm = s.maxGradNorm;
      o.remat = s.remat;
      o.fsdp = s.fsdp;
      o.fsdpReplicas = s.fsdpReplicas;
      o.fsdpPrefetch = s.fsdpPrefetch;
      buildTrainingPipeline(pm, o);
    });
    if (!lowered)
      return false;
    llama::ModelOp model = findModel(*lowered, name);
    if (failed(kir::lowerParams(model, program)))
      return false;
    for (StringRef fn : {"train_grad", "train_update", "loss", "forward", "loss_grad"}) {
      func::FuncOp f = findFunc(model, fn);
      if (!f) {
        if (fn == "forward" || fn == "loss_grad")
          continue;
        llvm::errs() << "error: the training pipeline produced no @" << fn << "\n";
        return false;
      }
      if (failed(kir::lowerFunction(f, program, {fn.str(), false})))
        return false;
    }
    auto text = [](double v) {
      char buf[32];
      snprintf(buf, sizeof buf, "%g", v);
      return std::string(buf);
    };
    program.config = {{"warmup", std::to_string(s.warmup)},
                      {"lr_floor", text(s.lrFloor)},
                      {"weight_decay", text(s.weightDecay)},
                      {"max_grad_norm", text(s.maxGradNorm)},
                      {"remat", s.remat}};
  } else {
    program.batch = 1;
    program.seq = seq;
    struct Variant {
      const char *name;
      int64_t seq;
      bool cache;
    } variants[] = {{"prefill", seq, true}, {"decode", 1, true}, {"forward", context, false}};
    bool first = true;
    for (const Variant &v : variants) {
      OwningOpRef<ModuleOp> lowered = lowerCopy(module, [&](OpPassManager &pm) {
        // Inference keeps f32 weights and activations (mixed precision is for training):
        // decoding reads every weight once per token, and narrowing a copy of it first would
        // double that until weights are stored in bf16 at load. --precision picks the
        // products: cuBLASLt rounds f32 operands to bf16 as it loads them.
        FrontendPipelineOptions o;
        o.batch = 1;
        o.seq = v.seq;
        buildInferencePipeline(pm, o);
      });
      if (!lowered)
        return false;
      llama::ModelOp model = findModel(*lowered, name);
      if (first && failed(kir::lowerParams(model, program, s.weights == "int8")))
        return false;
      first = false;
      func::FuncOp f = findFunc(model, "forward");
      if (!f) {
        llvm::errs() << "error: @" << name << " has no @forward to generate inference from\n";
        return false;
      }
      if (failed(kir::lowerFunction(f, program, {v.name, v.cache})))
        return false;
    }
    program.config = {{"prefill_chunk", std::to_string(seq)}, {"weights", s.weights}};
  }
  program.config["precision"] = s.precision;
  std::string why;
  if (s.target == "cuda") {
    kir::applyTargetDefaults(program, "cuda");
    for (const kir::Function &f : program.functions)
      for (const kir::Launch &l : f.launches)
        if (!kir::cudaSupports(l, &why)) {
          llvm::errs() << "error: --target cuda cannot generate " << kir::kernelName(l.kind)
                       << " (from " << l.origin << "): " << why << "\n";
          return false;
        }
  }
  if (!kir::verify(program, &why)) {
    llvm::errs() << "error: internal: the kernel-level program is inconsistent: " << why
                 << "\n";
    return false;
  }
  return true;
}

namespace {

std::string commandLine() {
  std::string s = "llamac compile " + driver::modelArgs().input + " --target " + target +
                  " --mode " + mode;
  return s;
}

/// Writes `text` to `path` atomically.
bool writeFile(const std::string &path, llvm::function_ref<void(llvm::raw_ostream &)> body) {
  std::string message;
  auto out = openOutputFile(path, &message);
  if (!out) {
    driver::error("cannot write '" + path + "': " + message);
    return false;
  }
  body(out->os());
  out->keep();
  return true;
}

} // namespace

namespace {

/// How one target's generated source becomes an executable.
struct Toolchain {
  std::string compiler;  ///< a path, or a name looked up in PATH
  const char *what;      ///< "host C++ compiler", for messages
  const char *flagName;  ///< the option that sets it, for messages
  const char *extension; ///< of the source file
  std::vector<std::string> flags;
  const char *link; ///< ';'-separated libraries
  std::string label; ///< what the success line calls the compilation
};

/// Writes the source with `writeSource`, compiles and links it with `tc`, and renames the
/// result over `output` only on success.
int buildExecutable(const Toolchain &tc, llvm::function_ref<void(llvm::raw_ostream &)> writeSource,
                    const std::string &output, bool keepSource) {
  // The source goes to a temporary file beside the output (or to <output>.cpp when kept),
  // the executable to a temporary name that is renamed over the output at the end.
  SmallString<256> dir(output);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  if (!llvm::sys::fs::is_directory(dir))
    return driver::error("cannot write '" + output + "': no directory '" + dir + "'");
  std::string base = llvm::sys::path::filename(output).str();
  SmallString<256> source;
  if (keepSource) {
    source = output + "." + tc.extension;
  } else if (std::error_code ec = llvm::sys::fs::createTemporaryFile("llamac-" + base,
                                                                     tc.extension, source)) {
    return driver::error("cannot create a temporary file: " + ec.message());
  }
  if (!writeFile(source.str().str(), writeSource))
    return 1;
  SmallString<256> temp(dir);
  llvm::sys::path::append(temp, "." + base + ".llamac-tmp");

  // A path is taken as given; a bare name is looked up in PATH.
  const std::string &cxx = tc.compiler;
  llvm::ErrorOr<std::string> compiler =
      StringRef(cxx).contains('/')
          ? (llvm::sys::fs::can_execute(cxx)
                 ? llvm::ErrorOr<std::string>(cxx)
                 : llvm::ErrorOr<std::string>(std::make_error_code(std::errc::no_such_file_or_directory)))
          : llvm::sys::findProgramByName(cxx);
  if (!compiler) {
    if (!keepSource)
      llvm::sys::fs::remove(source);
    return driver::error(std::string("cannot find the ") + tc.what + " '" + cxx + "' (set " +
                         tc.flagName + ")");
  }
  std::vector<std::string> argv = {*compiler};
  argv.insert(argv.end(), tc.flags.begin(), tc.flags.end());
  for (StringRef dirInc : {StringRef(LLAMAC_INCLUDE_SOURCE), StringRef(LLAMAC_INCLUDE_BINARY)})
    argv.push_back(("-I" + dirInc).str());
  argv.push_back(source.str().str());
  argv.push_back("-o");
  argv.push_back(temp.str().str());
  SmallVector<StringRef> libs;
  StringRef(tc.link).split(libs, ';', -1, false);
  for (StringRef lib : libs)
    argv.push_back(lib.str());
  SmallVector<StringRef> refs(argv.begin(), argv.end());
  std::string message;
  auto start = std::chrono::steady_clock::now();
  int rc = llvm::sys::ExecuteAndWait(*compiler, refs, std::nullopt, {}, 0, 0, &message);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!keepSource)
    llvm::sys::fs::remove(source);
  if (rc != 0) {
    llvm::sys::fs::remove(temp);
    return driver::error("the " + StringRef(tc.what) + " failed on the generated code (exit " +
                         Twine(rc) +
                         (message.empty() ? "" : ", " + message) +
                         "); rerun with --keep-source to inspect it");
  }
  if (std::error_code ec = llvm::sys::fs::rename(temp, output)) {
    llvm::sys::fs::remove(temp);
    return driver::error("cannot write '" + output + "': " + ec.message());
  }
  llvm::outs() << "  " << tc.label << " " << llvm::format("%.1f s", seconds) << "; wrote "
               << output << "\n";
  return 0;
}

} // namespace

int llamac::driver::hostCompile(llvm::function_ref<void(llvm::raw_ostream &)> writeSource,
                                const std::string &output, const std::string &cxx,
                                bool keepSource) {
  Toolchain tc{cxx,
               "host C++ compiler",
               "--cxx",
               "cpp",
               {"-std=c++20", "-O2", "-fopenmp", "-w"},
               LLAMAC_HOST_LINK,
               "host compile"};
  return buildExecutable(tc, writeSource, output, keepSource);
}

/// The -gencode flags for --cuda-arch ("sm_80,sm_90" or "80,90"); empty after an error.
static std::vector<std::string> gencodeFlags(StringRef archs) {
  std::vector<std::string> flags;
  SmallVector<StringRef> list;
  archs.split(list, ',', -1, false);
  for (StringRef a : list) {
    StringRef arch = a.trim();
    arch.consume_front("sm_");
    unsigned number = 0;
    if (arch.getAsInteger(10, number) || number < 80) {
      driver::error("--cuda-arch: '" + a.trim() + "' is not a GPU architecture of sm_80 or newer "
                    "(for example sm_80,sm_90)");
      return {};
    }
    flags.push_back("-gencode=arch=compute_" + std::to_string(number) + ",code=sm_" +
                    std::to_string(number));
  }
  if (flags.empty())
    driver::error("--cuda-arch names no architecture");
  return flags;
}

int llamac::driver::cudaCompile(llvm::function_ref<void(llvm::raw_ostream &)> writeSource,
                                const std::string &output, bool keepSource) {
  if (StringRef(nvcc).empty())
    return driver::error("--target cuda needs nvcc, and this llamac was built without a CUDA "
                         "toolkit (--emit cpp writes the CUDA source without it)");
  std::vector<std::string> flags = gencodeFlags(cudaArch);
  if (flags.empty())
    return 1;
  std::string archs;
  for (const std::string &f : flags)
    archs += (archs.empty() ? "" : ",") + f.substr(f.rfind('=') + 1);
  flags.insert(flags.begin(), {"-std=c++20", "-O2", "-w", "-Xcompiler=-w"});
  Toolchain tc{nvcc, "CUDA compiler", "--nvcc", "cu", flags, LLAMAC_CUDA_LINK,
               "nvcc for " + archs + ":"};
  return buildExecutable(tc, writeSource, output, keepSource);
}

namespace {

/// Sets every tunable launch's parameters from --tuning-db where it has an entry for this
/// device, kernel and shape; prints what it did and why entries did not apply.
///
/// --target cpu: the device is this machine's CPU. --target cuda: the GPU the program will
/// run on is not at hand, so it is the database's GPU that --tuning-device names, or its only
/// one (Database::selectGpu), with the libraries of the CUDA toolkit nvcc builds against;
/// the entries are those of the program's --precision (TuningDB.h: Entry::dtype).
bool applyTuningDb(kir::Program &program) {
  tune::Database db;
  std::string err;
  if (!db.load(tuningDb, &err)) {
    driver::error(err);
    return false;
  }
  bool cuda = program.target == "cuda";
  if (!cuda && !tuningDevice.empty()) {
    driver::error("--tuning-device is for --target cuda; --target cpu uses the entries of "
                  "this machine's CPU");
    return false;
  }
  tune::DeviceKey device;
  std::string dtype = "f32", selected;
  if (cuda) {
    // The toolkit is the one of --nvcc: <toolkit>/bin/nvcc (links followed) beside
    // <toolkit>/include. When it is unknown (no nvcc, as for --emit cpp without a toolkit),
    // the GPU's entries must agree on their libraries.
    std::string toolkitLibraries;
    llvm::ErrorOr<std::string> compiler =
        StringRef(nvcc).contains('/') ? llvm::ErrorOr<std::string>(nvcc.getValue())
                                      : llvm::sys::findProgramByName(nvcc);
    SmallString<256> include;
    if (!StringRef(nvcc).empty() && compiler && !llvm::sys::fs::real_path(*compiler, include)) {
      llvm::sys::path::remove_filename(include); // bin/
      llvm::sys::path::remove_filename(include);
      llvm::sys::path::append(include, "include");
      toolkitLibraries = tune::cudaToolkitLibraries(include.str().str());
    }
    if (!db.selectGpu(tuningDevice, toolkitLibraries, &device, &selected, &err)) {
      driver::error(err);
      return false;
    }
  } else {
    device = tune::currentCpuDevice(int(std::thread::hardware_concurrency()));
  }
  dtype = program.config["precision"];
  int applied = 0, tunable = 0;
  std::string note;
  for (kir::Function &f : program.functions)
    for (kir::Launch &l : f.launches) {
      if (kir::tunablesOf(l.kind, program.target).empty())
        continue;
      ++tunable;
      // No GPU in the database: nothing applies (selectGpu's note says so).
      if (device.description.empty())
        continue;
      std::string entryNote;
      const tune::Entry *e = db.lookup(device, kir::kernelName(l.kind),
                                       kir::shapeKey(l, program.target), dtype, &entryNote);
      if (note.empty())
        note = entryNote;
      if (!e)
        continue;
      std::vector<std::pair<std::string, int64_t>> choice;
      for (const tune::Choice &c : e->choices)
        choice.push_back({c.name, c.value});
      kir::applyChoice(l, choice);
      ++applied;
    }
  // A device tuned for other products has entries that never match: say which.
  if (applied == 0 && note.empty()) {
    std::vector<std::string> others;
    for (const tune::Entry *e : db.entries(device))
      if (std::find(others.begin(), others.end(), e->dtype) == others.end())
        others.push_back(e->dtype);
    if (!others.empty() && std::find(others.begin(), others.end(), dtype) == others.end()) {
      note = "tuning database " + tuningDb + " has no entries of --precision " + dtype +
             " for " + device.description + " (only of " + llvm::join(others, ", ") +
             "); tune with --precision " + dtype;
    }
  }
  llvm::outs() << "  tuning: " << applied << " of " << tunable
               << " tunable launches set from " << tuningDb << "\n";
  if (!selected.empty())
    llvm::outs() << "  note: " << selected << "\n";
  if (!note.empty())
    llvm::outs() << "  note: " << note << "\n";
  program.config["tuning_db"] = tuningDb;
  return true;
}

} // namespace

int llamac::driver::runCompile() {
  ModelArgs args = modelArgs();
  if (args.batch <= 0 || args.seq < 0)
    return error("--batch must be positive and --seq non-negative");
  if (target != "cpu" && target != "cuda")
    return error("--target must be cpu or cuda, not '" + target + "'");
  if (target == "cuda" && !mode.empty() && emit == "exe") {
    if (StringRef(nvcc).empty())
      return error("--target cuda needs nvcc, and this llamac was built without a CUDA toolkit "
                   "(--emit cpp writes the CUDA source without it)");
    if (gencodeFlags(cudaArch).empty())
      return 1;
  }
  if (!mode.empty() && mode != "train" && mode != "infer")
    return error("--mode must be train or infer, not '" + mode + "'");
  if (!mode.empty() && emit != "exe" && emit != "cpp" && emit != "kernels" && emit != "mlir")
    return error("--emit must be exe, cpp, kernels or mlir, not '" + emit + "'");
  if (!mode.empty() && emit != "kernels" && outputFile.empty())
    return error("--mode " + mode + " needs -o <file>");
  if (warmup < 0 || lrFloor < 0 || lrFloor > 1 || weightDecay < 0 || maxGradNorm <= 0)
    return error("--warmup must be >= 0, --lr-floor in [0, 1], --weight-decay >= 0 and "
                 "--max-grad-norm > 0");
  auto start = std::chrono::steady_clock::now();
  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp declared = selectModelForSeq(*module, args);
  if (!declared)
    return 1;
  int64_t context = declared.getConfig().getMaxSeqLen();
  auto elapsedMs = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  };
  if (mode.empty())
    return summary(args, *ctx, *module, declared, elapsedMs());

  std::string name = declared.getSymName().str();
  int64_t seq = args.seq;
  if (seq == 0)
    seq = mode == "infer" ? std::min<int64_t>(context, 64) : context;
  if (mode == "infer" && args.batch != 1)
    return error("--mode infer generates batch-1 programs; drop --batch");
  if (std::string why =
          targetOptionsError(target, weights, precision, precision.getNumOccurrences() > 0);
      !why.empty())
    return error(why);
  if (std::string why = precisionModeError(target, mode, precision,
                                           precision.getNumOccurrences() > 0);
      !why.empty())
    return error(why);
  if (weights == "int8" && mode != "infer")
    return error("--weights int8 is for --mode infer; training keeps f32 weights");
  if (mode == "infer" && emit == "mlir")
    return error("--emit mlir is available for --mode train");
  if (fsdp < 0 || fsdpPrefetch < 0)
    return error("--fsdp and --fsdp-prefetch must not be negative");
  if (fsdp > 0 && mode != "train")
    return error("--fsdp N shards training programs; --mode " + mode + " has nothing to shard");
  if (fsdpReplicas < 1 || (fsdpReplicas > 1 && (fsdp == 0 || fsdp % fsdpReplicas != 0)))
    return error("--fsdp-replicas R needs --fsdp N with N a multiple of R");

  if (emit == "mlir") {
    OwningOpRef<ModuleOp> lowered = lowerCopy(*module, [&](OpPassManager &pm) {
      TrainingPipelineOptions o;
      o.batch = args.batch;
      o.seq = seq;
      o.precision = driver::effectivePrecision(target, precision,
                                               precision.getNumOccurrences() > 0) == "bf16"
                        ? "bf16"
                        : "f32";
      o.warmup = warmup;
      o.floor = lrFloor;
      o.weightDecay = weightDecay;
      o.maxGradNorm = maxGradNorm;
      o.remat = remat;
      o.fsdp = fsdp;
      o.fsdpReplicas = fsdpReplicas;
      o.fsdpPrefetch = fsdpPrefetch;
      buildTrainingPipeline(pm, o);
    });
    if (!lowered)
      return 1;
    return writeFile(outputFile, [&](llvm::raw_ostream &os) { lowered->print(os); }) ? 0 : 1;
  }

  BuildSettings settings;
  settings.mode = mode;
  settings.target = target;
  settings.batch = args.batch;
  settings.seq = seq;
  settings.warmup = warmup;
  settings.lrFloor = lrFloor;
  settings.weightDecay = weightDecay;
  settings.maxGradNorm = maxGradNorm;
  settings.remat = remat;
  settings.weights = weights;
  settings.precision =
      driver::effectivePrecision(target, precision, precision.getNumOccurrences() > 0);
  settings.fsdp = fsdp;
  settings.fsdpReplicas = fsdpReplicas;
  settings.fsdpPrefetch = fsdpPrefetch;
  kir::Program program;
  if (!buildKernelProgram(*module, name, settings, program))
    return 1;
  if (!tuningDb.empty() && !applyTuningDb(program))
    return 1;

  if (emit == "kernels") {
    if (outputFile.empty() || outputFile == "-") {
      kir::print(program, llvm::outs());
      return 0;
    }
    return writeFile(outputFile, [&](llvm::raw_ostream &os) { kir::print(program, os); }) ? 0
                                                                                          : 1;
  }
  auto writeSource = [&](llvm::raw_ostream &os) {
    if (target == "cuda")
      kir::emitCuda(program, commandLine(), os);
    else
      emitCpu(program, commandLine(), os);
  };
  if (emit == "cpp")
    return writeFile(outputFile, writeSource) ? 0 : 1;

  llvm::outs() << "compiled @" << name << " (" << mode << ", " << target << ", batch "
               << program.batch << ", seq " << program.seq << ") in "
               << llvm::format("%.1f ms", elapsedMs()) << "\n";
  for (const kir::Function &f : program.functions)
    llvm::outs() << "  @" << f.name << ": " << f.launches.size() << " launches, arena "
                 << f.arenaBytes << " bytes (" << f.buffersBytes << " without reuse, "
                 << llvm::format("%.2fx", f.arenaBytes ? double(f.buffersBytes) / f.arenaBytes
                                                       : 1.0)
                 << ")\n";
  llvm::outs() << "  parameters and optimizer state: " << program.paramBytes << " bytes";
  if (program.fsdpRanks)
    llvm::outs() << " per rank (FSDP over " << program.fsdpRanks << " ranks"
                 << (fsdpReplicas > 1 ? ", " + std::to_string(fsdpReplicas) + " replicas"
                                      : std::string())
                 << ")";
  if (program.cacheBytes)
    llvm::outs() << ", KV cache: " << program.cacheBytes << " bytes";
  llvm::outs() << "\n";
  if (target == "cuda")
    return cudaCompile(writeSource, outputFile, keepSource);
  return hostCompile(writeSource, outputFile, cxx, keepSource);
}
