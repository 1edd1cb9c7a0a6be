//===- Tune.cpp - `llamac tune` ------------------------------------------------------===//
//
// Measures, on the machine at hand, the variants of every distinct tunable kernel (kind +
// shapes + element type) that a model's compiled program launches, and records the fastest
// in a tuning database (codegen/TuningDB.h) that `llamac compile --tuning-db` reads.
//
// The variants come from codegen/Tunables.h. All of them are timed by one generated
// program, built like the executables `llamac compile` makes, so the kernels run exactly as
// they will in the compiled program: the real buffer layout, the real thread count. Each
// variant's outputs are first compared with the default variant's on the same inputs, and
// only a variant within 1e-4 (norm-wise) may win; times are the median of --repeats runs
// after two warm-up runs, with the caches flushed (64 MiB written) before each, or, with
// --cache warm, as the previous run left them (closer to a kernel inside a program, whose
// inputs the previous kernel has just written).
//
// The choice is made once, here, and compiled into the program: every process of a
// multi-rank run executes the same tuned binary, and nothing is re-timed at run time.
//
//===----------------------------------------------------------------------------------===//

#include "tools/llamac/Driver.h"
#include "tools/llamac/HostToolchain.h"

#include "codegen/CpuEmitter.h"
#include "codegen/KernelIR.h"
#include "codegen/Tunables.h"
#include "codegen/TuningDB.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <thread>

#include <unistd.h> // environ

using namespace mlir;
using namespace llamac;
namespace cl = llvm::cl;

static cl::opt<std::string> output("o", cl::desc("The tuning database to write (entries for "
                                                 "other devices or kernels in it are kept)"),
                                   cl::value_desc("file"), cl::sub(driver::tuneCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> target("target", cl::desc("Code generation target: cpu"),
                                   cl::init("cpu"), cl::sub(driver::tuneCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> mode("mode", cl::desc("The program to tune: train or infer"),
                                 cl::init("train"), cl::sub(driver::tuneCommand()),
                                 cl::cat(driver::optionCategory()));
static cl::opt<std::string> weights("weights", cl::desc("Inference weights: f32 or int8"),
                                    cl::init("f32"), cl::sub(driver::tuneCommand()),
                                    cl::cat(driver::optionCategory()));
static cl::opt<std::string> space("space",
                                  cl::desc("Search space: full, or quick (a reduced one)"),
                                  cl::init("full"), cl::sub(driver::tuneCommand()),
                                  cl::cat(driver::optionCategory()));
static cl::opt<int> repeats("repeats", cl::desc("Timed runs per variant (median)"),
                            cl::init(10), cl::sub(driver::tuneCommand()),
                            cl::cat(driver::optionCategory()));
static cl::opt<std::string> cache("cache",
                                  cl::desc("Caches before each timed run: cold (flushed, the "
                                           "default) or warm (as left by the previous run)"),
                                  cl::init("cold"), cl::sub(driver::tuneCommand()),
                                  cl::cat(driver::optionCategory()));
static cl::opt<int> threads("threads",
                            cl::desc("Threads, as the program will run (0: all cores)"),
                            cl::init(0), cl::sub(driver::tuneCommand()),
                            cl::cat(driver::optionCategory()));
static cl::opt<std::string> cxx("cxx", cl::desc("Host C++ compiler"), cl::init(LLAMAC_HOST_CXX),
                                cl::sub(driver::tuneCommand()),
                                cl::cat(driver::optionCategory()));

namespace {

/// One distinct kernel to tune, and its variants (the default first).
struct Candidate {
  const kir::Launch *launch;
  std::string shape;
  std::vector<std::vector<std::pair<std::string, int64_t>>> variants;
};

std::string describe(const std::vector<std::pair<std::string, int64_t>> &choice) {
  std::string s;
  for (const auto &[name, value] : choice)
    s += (s.empty() ? "" : " ") + name + "=" + std::to_string(value);
  return s;
}

/// A buffer as an f32 pointer, whatever it holds: the benchmark fills and compares words.
std::string floatPointer(kir::BufferRef b) {
  b.type = kir::ElemType::F32;
  return kir::emitCpuPointer(b, false);
}

/// The benchmark program: every variant of every candidate, timed in one process.
void writeBenchmark(const kir::Program &program, const std::vector<Candidate> &candidates,
                    llvm::raw_ostream &os) {
  kir::emitCpuPreamble(os);
  os << "} // namespace\n\n"
     << "#include <algorithm>\n#include <cmath>\n#include <cstring>\n#include <vector>\n\n"
     << "// Untouched pages stay unallocated: only the buffers a timed launch reads are filled.\n"
     << "static std::byte *region(size_t bytes) {\n"
     << "  return static_cast<std::byte *>(std::calloc((bytes + 63) / 64 * 64 + 64, 1));\n}\n\n"
     << "// Small values, so that exponentials stay finite whatever the buffer holds.\n"
     << "static void fillRandom(float *f, size_t n, uint32_t seed) {\n"
     << "  uint32_t x = seed * 2654435761u + 1;\n"
     << "  for (size_t i = 0; i < n; ++i) {\n"
     << "    x = x * 1664525u + 1013904223u;\n"
     << "    f[i] = (float((x >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.5f;\n"
     << "  }\n}\n\n"
     << "static void flush() {\n"
     << "  static std::vector<char> junk(64 << 20);\n"
     << "  for (size_t i = 0; i < junk.size(); i += 64)\n    junk[i]++;\n}\n\n"
     << "static bool coldCaches = true;\n\n"
     << "template <class F> static double median(F f, int repeats) {\n"
     << "  f();\n  f();\n  std::vector<double> t;\n"
     << "  for (int r = 0; r < repeats; ++r) {\n    if (coldCaches)\n      flush();\n"
     << "    rt::Timer timer;\n    f();\n"
     << "    t.push_back(timer.seconds());\n  }\n"
     << "  std::sort(t.begin(), t.end());\n  return t[t.size() / 2];\n}\n\n"
     << "int main(int argc, char **argv) {\n"
     << "  int repeats = argc > 1 ? std::atoi(argv[1]) : 10;\n"
     << "  coldCaches = !(argc > 2 && std::strcmp(argv[2], \"warm\") == 0);\n"
     << "  rt::Context ctx;\n"
     << "  std::byte *A = region(" << program.arenaBytes() << ");\n"
     << "  std::byte *P = region(" << program.paramBytes << ");\n"
     << "  std::byte *C = region(" << program.cacheBytes << ");\n";
  // Arguments: argument i as large as the largest argument i of any function.
  std::vector<int64_t> inBytes, outBytes;
  for (const kir::Function &f : program.functions)
    for (auto [sigs, bytes] : {std::make_pair(&f.inputs, &inBytes),
                               std::make_pair(&f.outputs, &outBytes)})
      for (size_t i = 0; i < sigs->size(); ++i) {
        int64_t n = kir::elemBytes((*sigs)[i].type);
        for (int64_t d : (*sigs)[i].shape)
          n *= d;
        bytes->resize(std::max(bytes->size(), i + 1), 0);
        (*bytes)[i] = std::max((*bytes)[i], n);
      }
  os << "  void *in[" << std::max<size_t>(inBytes.size(), 1) << "], *out["
     << std::max<size_t>(outBytes.size(), 1) << "];\n";
  for (size_t i = 0; i < inBytes.size(); ++i)
    os << "  in[" << i << "] = region(" << inBytes[i] << ");\n";
  for (size_t i = 0; i < outBytes.size(); ++i)
    os << "  out[" << i << "] = region(" << outBytes[i] << ");\n";
  os << "  (void)C;\n";
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &cand = candidates[c];
    const kir::Launch &base = *cand.launch;
    os << "  {\n    // " << kir::kernelName(base.kind) << " " << cand.shape << "\n";
    for (size_t i = 0; i < base.inputs.size(); ++i) {
      const kir::BufferRef &b = base.inputs[i];
      if (b.type != kir::ElemType::F32 && b.type != kir::ElemType::I8)
        continue;
      // int8 weights: random bytes; their scales, small floats.
      os << "    fillRandom(" << floatPointer(b) << ", " << (b.bytes() + 3) / 4 << ", "
         << c * 16 + i + 1 << ");\n";
      if (b.scaleOffset >= 0)
        os << "    fillRandom(at<float>(P, " << b.scaleOffset << "), " << b.shape[0] << ", "
           << c * 16 + i + 9 << ");\n";
    }
    // A gradient kernel needs the forward's output and row statistics of these inputs.
    if (base.kind == kir::KernelKind::FlashAttentionGrad) {
      kir::Launch fwd = base;
      fwd.kind = kir::KernelKind::FlashAttention;
      fwd.inputs = {base.inputs[0], base.inputs[1], base.inputs[2]};
      fwd.outputs = {base.inputs[3], base.inputs[4]};
      os << "    " << kir::emitCpuCall(fwd) << ";\n";
    }
    // Snapshot the outputs of the default variant.
    os << "    std::vector<std::vector<float>> reference;\n";
    auto outputsCode = [&](const char *action) {
      std::string s;
      for (size_t o = 0; o < base.outputs.size(); ++o) {
        const kir::BufferRef &b = base.outputs[o];
        s += "      " + std::string(action) + "(" + floatPointer(b) + ", " +
             std::to_string(b.bytes() / 4) + ", " + std::to_string(o) + ");\n";
      }
      return s;
    };
    for (size_t v = 0; v < cand.variants.size(); ++v) {
      kir::Launch l = base;
      kir::applyChoice(l, cand.variants[v]);
      os << "    {\n      auto run = [&] { " << kir::emitCpuCall(l) << "; };\n"
         << "      run();\n"
         << "      double worst = 0, scale = 0;\n"
         << "      auto keep = [&](const float *p, size_t n, size_t) {\n"
         << "        reference.emplace_back(p, p + n);\n      };\n"
         << "      auto check = [&](const float *p, size_t n, size_t o) {\n"
         << "        for (size_t i = 0; i < n; ++i) {\n"
         << "          worst = std::max(worst, double(std::fabs(p[i] - reference[o][i])));\n"
         << "          scale = std::max(scale, double(std::fabs(reference[o][i])));\n"
         << "          if (std::isnan(p[i]) != std::isnan(reference[o][i])) worst = INFINITY;\n"
         << "        }\n      };\n"
         << (v == 0 ? outputsCode("keep") : outputsCode("check"))
         << "      double t = median(run, repeats);\n"
         << "      double rel = scale > 0 ? worst / scale : worst;\n"
         << "      std::printf(\"RESULT " << c << " " << v << " %.9g %.3g\\n\", t, rel);\n"
         << "      std::fprintf(stderr, \"  " << kir::kernelName(base.kind) << " [" << c + 1
         << "/" << candidates.size() << "] " << describe(cand.variants[v])
         << ": %.3f ms%s\\n\", t * 1e3, rel <= 1e-4 ? \"\" : \" (differs from the default: "
            "rejected)\");\n"
         << "    }\n";
  }
    os << "  }\n";
  }
  os << "  return 0;\n}\n";
}

} // namespace

int llamac::driver::runTune() {
  ModelArgs args = modelArgs();
  if (output.empty())
    return error("llamac tune needs -o <tuning database>");
  if (target != "cpu")
    return error("--target '" + target + "' is not available; this build tunes: cpu");
  if (mode != "train" && mode != "infer")
    return error("--mode must be train or infer, not '" + mode + "'");
  if (space != "full" && space != "quick")
    return error("--space must be full or quick, not '" + space + "'");
  if (weights != "f32" && weights != "int8")
    return error("--weights must be f32 or int8, not '" + weights + "'");
  if (cache != "cold" && cache != "warm")
    return error("--cache must be cold or warm, not '" + cache + "'");
  if (repeats < 1 || threads < 0 || args.batch <= 0 || args.seq < 0)
    return error("--repeats must be >= 1, --threads >= 0, --batch > 0 and --seq >= 0");

  // An existing database must be readable: its other entries are kept.
  tune::Database db;
  std::string err;
  if (!db.loadIfExists(output, &err))
    return error(err);

  auto ctx = makeContext();
  OwningOpRef<ModuleOp> module = loadModule(args.input, *ctx);
  if (!module)
    return 1;
  llama::ModelOp declared = selectModelForSeq(*module, args);
  if (!declared)
    return 1;
  int64_t context = declared.getConfig().getMaxSeqLen();
  BuildSettings settings;
  settings.mode = mode;
  settings.target = target;
  settings.batch = mode == "infer" ? 1 : args.batch;
  settings.seq = args.seq ? args.seq : (mode == "infer" ? std::min<int64_t>(context, 64) : context);
  settings.weights = weights;
  kir::Program program;
  if (!buildKernelProgram(*module, declared.getSymName(), settings, program))
    return 1;

  // The distinct tunable kernels, in order of first launch.
  std::vector<Candidate> candidates;
  std::map<std::pair<int, std::string>, size_t> seen;
  for (const kir::Function &f : program.functions)
    for (const kir::Launch &l : f.launches) {
      if (kir::tunablesOf(l.kind, target).empty())
        continue;
      std::string shape = kir::shapeKey(l, target);
      if (!seen.emplace(std::make_pair(int(l.kind), shape), candidates.size()).second)
        continue;
      candidates.push_back({&l, shape, kir::variantsOf(l, target, space == "quick")});
    }
  int nthreads = threads ? threads : int(std::thread::hardware_concurrency());
  tune::DeviceKey device = tune::currentCpuDevice(nthreads);
  llvm::outs() << "tuning @" << declared.getSymName() << " (" << mode << ", " << target
               << ") on " << device.description << " [" << device.libraries << "]: "
               << candidates.size() << " tunable kernels\n";
  size_t variantsTotal = 0;
  for (const Candidate &c : candidates)
    variantsTotal += c.variants.size();

  std::vector<std::vector<std::pair<double, double>>> results(candidates.size());
  if (!candidates.empty()) {
    llvm::SmallString<128> exe, out;
    if (llvm::sys::fs::createTemporaryFile("llamac-tune", "exe", exe) ||
        llvm::sys::fs::createTemporaryFile("llamac-tune", "txt", out))
      return error("cannot create temporary files");
    llvm::outs() << "  " << variantsTotal << " variants; building the benchmark\n";
    llvm::outs().flush();
    if (int rc = hostCompile(
            [&](llvm::raw_ostream &os) { writeBenchmark(program, candidates, os); },
            exe.str().str(), cxx, false))
      return rc;
    std::vector<std::string> env;
    for (char **e = environ; *e; ++e)
      if (!StringRef(*e).starts_with("OMP_NUM_THREADS="))
        env.push_back(*e);
    env.push_back("OMP_NUM_THREADS=" + std::to_string(nthreads));
    SmallVector<StringRef> envRefs(env.begin(), env.end());
    std::string rep = std::to_string(int(repeats));
    StringRef argv[] = {exe.str(), rep, cache};
    std::optional<StringRef> redirects[] = {std::nullopt, StringRef(out), std::nullopt};
    std::string message;
    llvm::outs() << "  timing (kernel, variant, median time):\n";
    llvm::outs().flush();
    int rc = llvm::sys::ExecuteAndWait(exe, argv, ArrayRef<StringRef>(envRefs), redirects, 0, 0,
                                       &message);
    llvm::sys::fs::remove(exe);
    auto text = llvm::MemoryBuffer::getFile(out);
    llvm::sys::fs::remove(out);
    if (rc != 0 || !text)
      return error("the tuning benchmark failed (exit " + Twine(rc) +
                   (message.empty() ? "" : ", " + message) + ")");
    std::istringstream lines((*text)->getBuffer().str());
    std::string word;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream in(line);
      size_t c, v;
      double t, rel;
      if (!(in >> word >> c >> v >> t >> rel) || word != "RESULT" || c >= candidates.size())
        continue;
      results[c].resize(candidates[c].variants.size(), {-1, 0});
      if (v < results[c].size())
        results[c][v] = {t, rel};
    }
  }

  // Winners: the fastest variant whose outputs agree with the default's.
  llvm::outs() << llvm::format("\n%-22s %-44s %-28s %10s %10s %8s\n", "kernel", "shape",
                               "best", "default ms", "best ms", "speedup");
  for (size_t c = 0; c < candidates.size(); ++c) {
    const Candidate &cand = candidates[c];
    if (results[c].empty() || results[c][0].first < 0)
      return error("the tuning benchmark gave no time for the default of " +
                   std::string(kir::kernelName(cand.launch->kind)) + " " + cand.shape);
    size_t best = 0;
    for (size_t v = 1; v < results[c].size(); ++v)
      if (results[c][v].first >= 0 && results[c][v].second <= 1e-4 &&
          results[c][v].first < results[c][best].first)
        best = v;
    tune::Entry entry;
    entry.kernel = kir::kernelName(cand.launch->kind);
    entry.shape = cand.shape;
    entry.dtype = "f32";
    for (const auto &[name, value] : cand.variants[best])
      entry.choices.push_back({name, value});
    entry.bestSeconds = results[c][best].first;
    entry.defaultSeconds = results[c][0].first;
    entry.variants = int(cand.variants.size());
    db.put(device, entry);
    std::string shape = cand.shape.size() > 44 ? cand.shape.substr(0, 41) + "..." : cand.shape;
    llvm::outs() << llvm::format("%-22s %-44s %-28s %10.3f %10.3f %7.2fx\n",
                                 entry.kernel.c_str(), shape.c_str(),
                                 describe(cand.variants[best]).c_str(),
                                 entry.defaultSeconds * 1e3, entry.bestSeconds * 1e3,
                                 entry.defaultSeconds / entry.bestSeconds);
  }
  if (!db.save(output, &err))
    return error(err);
  llvm::outs() << "\nwrote " << output << " (" << candidates.size() << " entries for this "
               << "device)\n";
  return 0;
}
