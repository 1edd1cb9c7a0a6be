//===- CudaEmitter.cpp - kernel-level IR to CUDA C++ ---------------------------------===//
#include "codegen/CudaEmitter.h"
#include "codegen/EmitSpec.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

using namespace llamac::kir;

namespace {

/// Head dimensions FlashAttention.cuh can be instantiated for (its static_asserts).
bool attentionHeadDimSupported(int64_t d) { return d % 16 == 0 && d >= 16 && d <= 128; }

/// The cuda::Precision enumerator of --precision `name` (bf16 when it is not recorded).
std::string precisionEnumerator(const std::string &name) {
  return name.empty() || name == "bf16" ? "BF16" : name == "tf32" ? "TF32" : "F32";
}

/// The generated __global__ kernels of a program's Pointwise launches, one per distinct
/// body (which names every input it reads), named pointwise_<k>.
struct PointwiseKernels {
  std::map<std::string, std::string> nameOf; ///< body statements -> kernel name
  std::string definitions;

  const std::string &kernelFor(const Launch &l) {
    static const char *const math[5] = {"expf", "logf", "sqrtf", "rsqrtf", "llamac_maximum"};
    std::string key = pointwiseBody(l, math);
    auto it = nameOf.find(key);
    if (it != nameOf.end())
      return it->second;
    std::string name = "pointwise_" + std::to_string(nameOf.size());
    std::string params;
    for (size_t k = 0; k < l.inputs.size(); ++k)
      params += ", const float *in" + std::to_string(k);
    // No __restrict__: the output may be one of the inputs (in-place accumulation).
    definitions += "// " + l.origin + "\n__global__ void " + name + "(int64_t n" + params +
                   ", float *out) {\n  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + "
                   "threadIdx.x; i < n;\n       i += int64_t(gridDim.x) * blockDim.x) {\n    " +
                   key + "\n  }\n}\n\n";
    return nameOf.emplace(key, name).first->second;
  }
};

/// One entry function being written: where its arguments sit in the staging buffer, and
/// the launches that report bad ids in the error words.
struct FunctionEmitter {
  const Function &fn;
  const Program *program; ///< for the names of parameters in messages; may be null
  PointwiseKernels &pointwise;
  std::string precision; ///< cuda::Precision enumerator of the GEMMs' products
  std::vector<int64_t> inOffset, outOffset;
  int64_t stagingBytes = 0;
  struct Check {
    size_t launch;
    std::string what;
  };
  std::vector<Check> checks;

  FunctionEmitter(const Function &f, const Program *program, PointwiseKernels &pointwise,
                  std::string precision)
      : fn(f), program(program), pointwise(pointwise), precision(std::move(precision)) {
    auto place = [&](const std::vector<TensorSig> &sigs, std::vector<int64_t> &offsets) {
      for (const TensorSig &s : sigs) {
        offsets.push_back(stagingBytes);
        int64_t n = elemBytes(s.type);
        for (int64_t d : s.shape)
          n *= d;
        stagingBytes += (n + 255) / 256 * 256;
      }
    };
    place(f.inputs, inOffset);
    place(f.outputs, outOffset);
  }

  std::string ptr(const BufferRef &b, bool isConst) const {
    std::string type = (isConst ? "const " : "") + cType(b.type);
    std::string base;
    int64_t offset = b.offset;
    switch (b.space) {
    case Space::Arena:
      base = "A";
      break;
    case Space::Param:
      base = "P";
      break;
    case Space::Cache:
      base = "C";
      break;
    case Space::Input:
      base = "S";
      offset += inOffset[size_t(b.index)];
      break;
    case Space::Output:
      base = "S";
      offset += outOffset[size_t(b.index)];
      break;
    }
    return "at<" + type + ">(" + base + ", " + std::to_string(offset) + ")";
  }
  std::string in(const Launch &l, size_t i) const { return ptr(l.inputs[i], true); }
  std::string out(const Launch &l, size_t i) const { return ptr(l.outputs[i], false); }
  static std::string I(const Launch &l, const char *name) {
    return std::to_string(l.intAttr(name));
  }
  static std::string F(const Launch &l, const char *name) { return lit(l.floatAttr(name)); }
  static std::string B(const Launch &l, const char *name) {
    return l.intAttr(name) ? "true" : "false";
  }
  /// The device word a validating launch reports in.
  std::string check(size_t launch, const std::string &what) {
    checks.push_back({launch, what});
    return "E + " + std::to_string(checks.size() - 1);
  }

  /// What a collective moves, for its messages (the unit's shard, as the CPU's name it).
  std::string collectiveWhatOf(const Launch &l) const {
    static const Program none;
    return collectiveWhat(program ? *program : none, l);
  }

  std::string call(const Launch &l, size_t index) {
    const std::string st = "X.stream(" + std::to_string(l.stream) + ")";
    switch (l.kind) {
    case KernelKind::GemmNT:
    case KernelKind::GemmNN:
    case KernelKind::GemmTN: {
      const char *fn = l.kind == KernelKind::GemmNT   ? "nt"
                       : l.kind == KernelKind::GemmNN ? "nn"
                                                      : "tn";
      return std::string("X.blas(X.gemm().") + fn + "(" + I(l, "M") + ", " + I(l, "N") + ", " +
             I(l, "K") + ", " + in(l, 0) + ", " + in(l, 1) + ", " + out(l, 0) + ", " +
             B(l, "accumulate") + ", " + I(l, "algo") + ", " + st + "))";
    }
    case KernelKind::GemmNTQ8:
      return "static_assert(false, \"int8 weights are not generated for CUDA\")";
    case KernelKind::Fill:
      return "cuda::fill(" + out(l, 0) + ", " + I(l, "n") + ", float(" + F(l, "value") + "), " +
             st + ")";
    case KernelKind::Copy: {
      BufferRef src = l.inputs[0], dst = l.outputs[0];
      src.type = dst.type = ElemType::F32; // 4-byte words, whatever they hold
      return "cuda::copy(" + ptr(src, true) + ", " + I(l, "n") + ", " + ptr(dst, false) + ", " +
             st + ")";
    }
    case KernelKind::Cast: // f32 <-> bf16, by the pointers' types
      return "cuda::cast(" + in(l, 0) + ", " + I(l, "n") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::CopyRows:
      return "cuda::copyRows(" + in(l, 0) + ", " + I(l, "rows") + ", " + I(l, "cols") + ", " +
             I(l, "in_stride") + ", " + I(l, "out_stride") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::Binary:
      return "cuda::binary(" + I(l, "op") + ", " + in(l, 0) + ", " + in(l, 1) + ", " +
             I(l, "n") + ", " + I(l, "b_size") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::Unary:
      return "cuda::unary(" + I(l, "op") + ", " + in(l, 0) + ", " + I(l, "n") + ", " +
             out(l, 0) + ", " + st + ")";
    case KernelKind::Scale:
      return "cuda::scale(" + in(l, 0) + ", " + I(l, "n") + ", float(" + F(l, "factor") +
             "), " + out(l, 0) + ", " + st + ")";
    case KernelKind::Embedding:
      return "cuda::embedding(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "n") + ", " +
             I(l, "dim") + ", " + I(l, "vocab") + ", " + out(l, 0) + ", " +
             check(index, "token id out of range") + ", " + st + ")";
    case KernelKind::EmbeddingGrad:
      return "cuda::embeddingGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "n") + ", " +
             I(l, "dim") + ", " + I(l, "vocab") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::RMSNorm:
      return "cuda::rmsNorm(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "rows") + ", " +
             I(l, "dim") + ", " + F(l, "eps") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::RMSNormGrad:
      return "cuda::rmsNormGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             I(l, "rows") + ", " + I(l, "dim") + ", " + F(l, "eps") + ", " + out(l, 0) + ", " +
             out(l, 1) + ", " + st + ")";
    case KernelKind::AddRMSNorm:
      return "cuda::addRmsNorm(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             I(l, "rows") + ", " + I(l, "dim") + ", " + F(l, "eps") + ", " + out(l, 0) + ", " +
             out(l, 1) + ", " + st + ")";
    case KernelKind::AddRMSNormGrad:
      return "cuda::addRmsNormGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             in(l, 3) + ", " + I(l, "rows") + ", " + I(l, "dim") + ", " + F(l, "eps") + ", " +
             out(l, 0) + ", " + out(l, 1) + ", " + st + ")";
    case KernelKind::SwiGLU:
      return "cuda::swiglu(" + in(l, 0) + ", " + I(l, "rows") + ", " + I(l, "F") + ", " +
             out(l, 0) + ", " + st + ")";
    case KernelKind::SwiGLUGrad:
      return "cuda::swigluGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "rows") + ", " +
             I(l, "F") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::QKVRoPE: {
      std::string offset = l.inputs.size() > 1 ? in(l, 1) : "nullptr";
      return "cuda::qkvRope(" + in(l, 0) + ", " + I(l, "B") + ", " + I(l, "T") + ", " +
             I(l, "H") + ", " + I(l, "Hkv") + ", " + I(l, "D") + ", " + F(l, "theta") + ", " +
             offset + ", " + out(l, 0) + ", " + out(l, 1) + ", " + out(l, 2) + ", " + st + ")";
    }
    case KernelKind::QKVRoPEGrad: {
      // Training only, where positions start at 0 (as the CPU kernel is called).
      std::string offset = "nullptr";
      return "cuda::qkvRopeGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             I(l, "B") + ", " + I(l, "T") + ", " + I(l, "H") + ", " + I(l, "Hkv") + ", " +
             I(l, "D") + ", " + F(l, "theta") + ", " + offset + ", " + out(l, 0) + ", " + st +
             ")";
    }
    case KernelKind::FlashAttention:
      // bf16 tensor cores with bf16 products, f32 CUDA cores otherwise (FlashAttention.cuh).
      return "cuda::flashAttention<" + I(l, "D") + ", " + I(l, "block_q") + ", " +
             I(l, "block_k") + (precision == "BF16" ? "" : ", false") + ">(" + in(l, 0) +
             ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             I(l, "B") + ", " + I(l, "T") + ", " + I(l, "S") + ", " + I(l, "H") + ", " +
             I(l, "Hkv") + ", " + B(l, "causal") + ", " + I(l, "window") + ", float(" +
             F(l, "scale") + "), " + out(l, 0) + ", " + out(l, 1) + ", " + st + ")";
    case KernelKind::FlashAttentionGrad:
      return "cuda::flashAttentionGrad<" + I(l, "D") + ", " + I(l, "block_q") + ", " +
             I(l, "block_k") + ">(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             in(l, 3) + ", " + in(l, 4) + ", " + in(l, 5) + ", " + I(l, "B") + ", " +
             I(l, "T") + ", " + I(l, "S") + ", " + I(l, "H") + ", " + I(l, "Hkv") + ", " +
             B(l, "causal") + ", " + I(l, "window") + ", float(" + F(l, "scale") + "), " +
             out(l, 0) + ", " + out(l, 1) + ", " + out(l, 2) + ", " + st + ")";
    case KernelKind::AttentionKVCache:
      return "cuda::attentionKVCache<" + I(l, "D") + ">(" + in(l, 0) + ", " + in(l, 1) + ", " +
             in(l, 2) + ", " + out(l, 1) + ", " + out(l, 2) + ", " + I(l, "capacity") + ", " +
             in(l, 3) + ", " + I(l, "C") + ", " + I(l, "H") + ", " + I(l, "Hkv") + ", " +
             I(l, "window") + ", float(" + F(l, "scale") + "), " + out(l, 0) + ", " + st + ")";
    case KernelKind::CrossEntropy:
      return "cuda::fusedCrossEntropy(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "rows") +
             ", " + I(l, "vocab") + ", " + I(l, "ignore_index") + ", " + out(l, 0) + ", " +
             out(l, 1) + ", " + check(index, "target id out of range") + ", " + st + ")";
    case KernelKind::CrossEntropyGrad:
      return "cuda::fusedCrossEntropyGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) +
             ", " + in(l, 3) + ", " + I(l, "rows") + ", " + I(l, "vocab") + ", " +
             I(l, "ignore_index") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::LRSchedule:
      return "cuda::lrSchedule(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
             I(l, "warmup") + ", " + F(l, "floor") + ", " + out(l, 0) + ", " + st + ")";
    case KernelKind::GradClip: {
      size_t n = l.inputs.size() - 1;
      std::string grads, sizes;
      for (size_t i = 0; i < n; ++i) {
        grads += (i ? ", " : "") + in(l, i);
        sizes += (i ? ", " : "") + std::to_string(l.inputs[i].elements());
      }
      return "static const int64_t sizes[] = {" + sizes + "}; const float *grads[] = {" +
             grads + "}; cuda::gradClip(grads, sizes, " + std::to_string(n) + ", " +
             in(l, n) + ", " + F(l, "max_norm") + ", " + out(l, 0) + ", " + out(l, 1) + ", " +
             st + ")";
    }
    case KernelKind::Pointwise: {
      // A kernel generated for this body (PointwiseKernels), grid-stride over n elements.
      int64_t n = l.intAttr("n");
      int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, 65535));
      std::string args;
      for (size_t k = 0; k < l.inputs.size(); ++k)
        args += ", " + in(l, k);
      return pointwise.kernelFor(l) + "<<<" + std::to_string(blocks) + ", 256, 0, " + st +
             ">>>(" + std::to_string(n) + args + ", " + out(l, 0) + ")";
    }
    case KernelKind::AllGather:
    case KernelKind::ReduceScatter:
    case KernelKind::AllReduce: {
      // NCCL on the launch's stream (the communication stream), among the ranks of its
      // grid axis.
      const char *fn = l.kind == KernelKind::AllGather       ? "allGather"
                       : l.kind == KernelKind::ReduceScatter ? "reduceScatter"
                                                             : "allReduce";
      return std::string("cuda::") + fn + "(X, " + I(l, "axis") + ", " + st + ", " +
             in(l, 0) + ", " + out(l, 0) + ", " + I(l, "n") + ", " + I(l, "ranks") + ", \"" +
             escape(collectiveWhatOf(l)) + "\")";
    }
    case KernelKind::AdamW:
      return "cuda::adamw(" + out(l, 0) + ", " + in(l, 1) + ", " + out(l, 1) + ", " + out(l, 2) +
             ", " + I(l, "n") + ", " + in(l, 4) + ", " + in(l, 5) + ", " + in(l, 6) + ", " +
             F(l, "beta1") + ", " + F(l, "beta2") + ", " + F(l, "eps") + ", " +
             F(l, "weight_decay") + ", " + st + ")";
    }
    return "static_assert(false, \"unknown kernel\")";
  }

  void emit(llvm::raw_ostream &os) {
    const std::string id = identifier(fn.name);
    // The body: the launches, in order, each on its stream.
    std::set<int> streams = {0};
    int maxEvent = -1;
    for (const Launch &l : fn.launches) {
      streams.insert(l.stream);
      for (int w : l.waits)
        maxEvent = std::max(maxEvent, w);
      maxEvent = std::max(maxEvent, l.records);
    }
    std::string body;
    llvm::raw_string_ostream bs(body);
    // Other streams start after stream 0's input copies, and stream 0 ends after them.
    int fork = maxEvent + 1, join = maxEvent + 2;
    if (streams.size() > 1) {
      bs << "  cudaEventRecord(X.event(" << fork << "), X.stream(0));\n";
      for (int s : streams)
        if (s != 0)
          bs << "  cudaStreamWaitEvent(X.stream(" << s << "), X.event(" << fork << "), 0);\n";
    }
    for (size_t i = 0; i < fn.launches.size(); ++i) {
      const Launch &l = fn.launches[i];
      bs << "  // " << i << ": " << l.origin << "\n";
      for (int w : l.waits)
        bs << "  cudaStreamWaitEvent(X.stream(" << l.stream << "), X.event(" << w << "), 0);\n";
      bs << "  LAUNCH(" << i << ", \"" << kernelName(l.kind) << "\", \"" << escape(l.origin)
         << "\", " << call(l, i) << ");\n";
      if (l.records >= 0)
        bs << "  cudaEventRecord(X.event(" << l.records << "), X.stream(" << l.stream << "));\n";
    }
    int joinIndex = join;
    for (int s : streams)
      if (s != 0) {
        bs << "  cudaEventRecord(X.event(" << joinIndex << "), X.stream(" << s << "));\n"
           << "  cudaStreamWaitEvent(X.stream(0), X.event(" << joinIndex << "), 0);\n";
        ++joinIndex;
      }

    os << "// @" << fn.name << ": " << fn.launches.size() << " launches, arena "
       << fn.arenaBytes << " bytes (" << fn.buffersBytes << " without reuse), staging "
       << stagingBytes << " bytes\n";
    os << "void body_" << id
       << "(cuda::ExecState &X, std::byte *A, std::byte *P, std::byte *C, std::byte *S,\n"
       << "    int64_t *E, rt::Profiler *prof) {\n"
       << "  static const char *const kFunction = \"" << escape(fn.name) << "\";\n"
       << "  (void)A; (void)P; (void)C; (void)S; (void)E;\n"
       << body << "}\n\n";

    os << "void fn_" << id << "(rt::Context &ctx, void *const *in, void *const *out) {\n"
       << "  cuda::ExecState &X = cuda::state(ctx);\n"
       << "  std::byte *S = X.staging(" << std::max<int64_t>(stagingBytes, 256) << ");\n"
       << "  int64_t *E = X.errorWords(" << checks.size() << ");\n"
       << "  X.gemm().setPrecision(cuda::Precision::" << precision << ");\n";
    // The ranks of each grid axis its collectives run along.
    std::set<int64_t> axes;
    for (const Launch &l : fn.launches)
      if (isCollective(l.kind))
        axes.insert(l.intAttr("axis"));
    for (int64_t a : axes)
      os << "  X.setCommunicator(" << a << ", ctx.grid[" << a << "]);\n";
    for (size_t i = 0; i < fn.inputs.size(); ++i) {
      int64_t n = elemBytes(fn.inputs[i].type);
      for (int64_t d : fn.inputs[i].shape)
        n *= d;
      os << "  X.copyIn(S + " << inOffset[i] << ", in[" << i << "], " << n << ", \""
         << escape(fn.name) << "\");\n";
    }
    os << "  X.run(\"" << escape(fn.name) << "\", ctx.profiler, [&] { body_" << id
       << "(X, ctx.arena, ctx.params, ctx.cache, S, E, ctx.profiler); });\n";
    if (!checks.empty()) {
      os << "  static const cuda::LaunchSite kSites[] = {\n";
      for (const Check &c : checks) {
        const Launch &l = fn.launches[c.launch];
        os << "      {\"" << escape(fn.name) << "\", " << c.launch << ", \""
           << kernelName(l.kind) << "\", \"" << escape(l.origin) << "\"},\n";
      }
      os << "  };\n  static const char *const kWhat[] = {";
      for (size_t i = 0; i < checks.size(); ++i)
        os << (i ? ", " : "") << "\"" << checks[i].what << "\"";
      os << "};\n  X.checkWords(E, kSites, " << checks.size() << ", kWhat);\n";
    }
    for (size_t i = 0; i < fn.outputs.size(); ++i) {
      int64_t n = elemBytes(fn.outputs[i].type);
      for (int64_t d : fn.outputs[i].shape)
        n *= d;
      os << "  X.copyOut(out[" << i << "], S + " << outOffset[i] << ", " << n << ", \""
         << escape(fn.name) << "\");\n";
    }
    os << "  X.finish(\"" << escape(fn.name) << "\");\n"
       << "  (void)in;\n  (void)out;\n}\n\n";
    emitTensorSpecs(fn.inputs, "kIn_" + id, os);
    emitTensorSpecs(fn.outputs, "kOut_" + id, os);
    os << "\n";
  }
};

} // namespace

bool llamac::kir::cudaSupports(const Launch &launch, std::string *why) {
  switch (launch.kind) {
  case KernelKind::GemmNTQ8:
    *why = "int8 weights (--weights int8) are generated for the CPU only";
    return false;
  case KernelKind::AllGather:
  case KernelKind::ReduceScatter:
  case KernelKind::AllReduce: {
    // Through NCCL (runtime/cuda/Nccl.cpp), one communicator per axis of the grid, which
    // has two at most (rt::Context::grid).
    int64_t axis = launch.intAttr("axis");
    if (axis < 0 || axis >= 2) {
      *why = "the CUDA collectives run along grid axis 0 or 1, not " + std::to_string(axis);
      return false;
    }
    return true;
  }
  case KernelKind::FlashAttention:
  case KernelKind::FlashAttentionGrad:
  case KernelKind::AttentionKVCache:
    if (!attentionHeadDimSupported(launch.intAttr("D"))) {
      *why = "the CUDA attention kernels support head dimensions that are multiples of 16 up "
             "to 128, not " +
             std::to_string(launch.intAttr("D"));
      return false;
    }
    return true;
  default:
    return true;
  }
}

void llamac::kir::emitCuda(const Program &p, const std::string &command, llvm::raw_ostream &os) {
  os << "// Generated by llamac: " << command << "\n"
     << "// Model @" << p.modelName << ", mode " << p.mode << ", target " << p.target
     << ". Do not edit: recompile the model instead.\n"
     << "#include \"runtime/Program.h\"\n"
     << "#include \"runtime/cuda/CudaKernels.h\"\n"
     << "#include \"runtime/cuda/CudaRuntime.h\"\n"
     << "#include \"runtime/cuda/FlashAttention.cuh\"\n\n"
     << "#include <cstddef>\n#include <cstdint>\n\n"
     << "using namespace llamac;\n\n"
     << "namespace {\n\n"
     << "template <class T> T *at(std::byte *base, int64_t offset) {\n"
     << "  return reinterpret_cast<T *>(base + offset);\n}\n\n"
     << "// One launch: checked for errors (and timed when profiling) by the execution state.\n"
     << "#define LAUNCH(index, kernel, origin, ...)                                     \\\n"
     << "  do {                                                                       \\\n"
     << "    X.before(prof);                                                          \\\n"
     << "    __VA_ARGS__;                                                             \\\n"
     << "    X.after(cuda::LaunchSite{kFunction, index, kernel, origin}, prof);       \\\n"
     << "  } while (0)\n\n";
  // --precision (Compile.cpp records it): the products of the GEMMs.
  auto it = p.config.find("precision");
  std::string precision = precisionEnumerator(it == p.config.end() ? "" : it->second);
  // Functions first into a buffer: their Pointwise launches define the generated kernels,
  // which go before them.
  PointwiseKernels pointwise;
  std::string functions;
  llvm::raw_string_ostream fs(functions);
  for (const Function &f : p.functions) {
    FunctionEmitter e(f, &p, pointwise, precision);
    e.emit(fs);
  }
  if (!pointwise.definitions.empty())
    os << "// Generated kernels of the fused pointwise chains.\n"
       << "__device__ inline float llamac_maximum(float a, float b) {\n"
       << "  return a != a || b != b ? a + b : (a > b ? a : b); // NaN-propagating\n}\n\n"
       << pointwise.definitions;
  os << functions;
  emitProgramSpec(p, "cuda::createCudaDevice", os);
}

std::string llamac::kir::emitCudaCall(const Launch &launch, const std::vector<int64_t> &inOffsets,
                                      const std::vector<int64_t> &outOffsets,
                                      const std::string &precision) {
  // An emitter for a function without arguments, given the caller's staging layout; its
  // error-word count and generated kernels are dropped with it.
  static const Function none;
  PointwiseKernels pointwise;
  FunctionEmitter e(none, nullptr, pointwise, precisionEnumerator(precision));
  e.inOffset = inOffsets;
  e.outOffset = outOffsets;
  return e.call(launch, 0);
}
