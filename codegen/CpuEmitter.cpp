//===- CpuEmitter.cpp - kernel-level IR to C++ for the CPU --------------------------===//
#include "codegen/CpuEmitter.h"
#include "codegen/EmitSpec.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace llamac::kir;

namespace {


/// A pointer expression for a buffer, typed by its element type.
std::string ptr(const BufferRef &b, bool isConst) {
  std::string type = (isConst ? "const " : "") + cType(b.type);
  std::string base;
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
    base = "in[" + std::to_string(b.index) + "]";
    break;
  case Space::Output:
    base = "out[" + std::to_string(b.index) + "]";
    break;
  }
  return "at<" + type + ">(" + base + ", " + std::to_string(b.offset) + ")";
}
std::string in(const Launch &l, size_t i) { return ptr(l.inputs[i], true); }
std::string outp(const Launch &l, size_t i) { return ptr(l.outputs[i], false); }
std::string scalar(const BufferRef &b) { return "*" + ptr(b, true); }
std::string I(const Launch &l, const char *name) { return std::to_string(l.intAttr(name)); }
std::string F(const Launch &l, const char *name) { return lit(l.floatAttr(name)); }


/// The call a launch makes: one statement. `what` names a collective's data in messages.
std::string call(const Launch &l, const std::string &what = "") {
  switch (l.kind) {
  case KernelKind::GemmNT:
  case KernelKind::GemmNN:
  case KernelKind::GemmTN: {
    const char *fn = l.kind == KernelKind::GemmNT   ? "gemmNT"
                     : l.kind == KernelKind::GemmNN ? "gemmNN"
                                                    : "gemmTN";
    // impl (codegen/Tunables.cpp): 0 (or absent) BLIS, 1 llamac's own GEMM with K blocks of
    // kc (0 or absent: its default).
    bool own = l.intAttr("impl") == 1;
    return std::string("cpu::") + fn + (own ? "Own" : "") + "(" + I(l, "M") + ", " + I(l, "N") + ", " + I(l, "K") +
           ", " + in(l, 0) + ", " + in(l, 1) + ", " + outp(l, 0) + ", " +
           (l.intAttr("accumulate") ? "true" : "false") +
           (own ? ", " + std::to_string(l.intAttr("kc")) : std::string()) + ")";
  }
  case KernelKind::GemmNTQ8:
    return "cpu::gemmNTQ8(" + I(l, "M") + ", " + I(l, "N") + ", " + I(l, "K") + ", " +
           in(l, 0) + ", " + in(l, 1) + ", at<const float>(P, " +
           std::to_string(l.inputs[1].scaleOffset) + "), " + outp(l, 0) + ", " +
           I(l, "rows_per_task") + ")";
  case KernelKind::Fill:
    return "cpu::fill(" + outp(l, 0) + ", " + I(l, "n") + ", float(" + F(l, "value") + "))";
  case KernelKind::Copy: {
    BufferRef src = l.inputs[0], dst = l.outputs[0];
    src.type = dst.type = ElemType::F32; // words, whatever they hold
    return "cpu::copy(" + ptr(src, true) + ", " + I(l, "n") + ", " + ptr(dst, false) + ")";
  }
  case KernelKind::Cast: // f32 <-> bf16, by the pointers' types
    return "cpu::cast(" + in(l, 0) + ", " + I(l, "n") + ", " + outp(l, 0) + ")";
  case KernelKind::CopyRows:
    return "cpu::copyRows(" + in(l, 0) + ", " + I(l, "rows") + ", " + I(l, "cols") + ", " +
           I(l, "in_stride") + ", " + I(l, "out_stride") + ", " + outp(l, 0) + ")";
  case KernelKind::Binary:
    return "cpu::binary(cpu::Binary(" + I(l, "op") + "), " + in(l, 0) + ", " + in(l, 1) +
           ", " + I(l, "n") + ", " + I(l, "b_size") + ", " + outp(l, 0) + ")";
  case KernelKind::Unary:
    return "cpu::unary(cpu::Unary(" + I(l, "op") + "), " + in(l, 0) + ", " + I(l, "n") + ", " +
           outp(l, 0) + ")";
  case KernelKind::Scale:
    return "cpu::scale(" + in(l, 0) + ", " + I(l, "n") + ", float(" + F(l, "factor") + "), " +
           outp(l, 0) + ")";
  case KernelKind::Embedding:
    return "if (int64_t bad = 0; !cpu::embedding(" + in(l, 0) + ", " + in(l, 1) + ", " +
           I(l, "n") + ", " + I(l, "dim") + ", " + I(l, "vocab") + ", " + outp(l, 0) +
           ", &bad)) fail(\"" + escape(l.origin) + "\", \"token id out of range\", bad)";
  case KernelKind::EmbeddingGrad:
    return "cpu::embeddingGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "n") + ", " +
           I(l, "dim") + ", " + I(l, "vocab") + ", " + outp(l, 0) + ")";
  case KernelKind::RMSNorm:
    return "cpu::rmsNorm(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "rows") + ", " +
           I(l, "dim") + ", " + F(l, "eps") + ", " + outp(l, 0) + ")";
  case KernelKind::RMSNormGrad:
    return "cpu::rmsNormGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           I(l, "rows") + ", " + I(l, "dim") + ", " + F(l, "eps") + ", " + outp(l, 0) + ", " +
           outp(l, 1) + ")";
  case KernelKind::AddRMSNorm:
    return "cpu::addRmsNorm(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           I(l, "rows") + ", " + I(l, "dim") + ", " + F(l, "eps") + ", " + outp(l, 0) + ", " +
           outp(l, 1) + ")";
  case KernelKind::AddRMSNormGrad:
    return "cpu::addRmsNormGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           in(l, 3) + ", " + I(l, "rows") + ", " + I(l, "dim") + ", " + F(l, "eps") + ", " +
           outp(l, 0) + ", " + outp(l, 1) + ")";
  case KernelKind::SwiGLU:
    return "cpu::swiglu(" + in(l, 0) + ", " + I(l, "rows") + ", " + I(l, "F") + ", " +
           outp(l, 0) + ")";
  case KernelKind::SwiGLUGrad:
    return "cpu::swigluGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + I(l, "rows") + ", " +
           I(l, "F") + ", " + outp(l, 0) + ")";
  case KernelKind::QKVRoPE: {
    std::string offset = l.inputs.size() > 1 ? scalar(l.inputs[1]) : "0";
    return "cpu::qkvRope(" + in(l, 0) + ", " + I(l, "B") + ", " + I(l, "T") + ", " +
           I(l, "H") + ", " + I(l, "Hkv") + ", " + I(l, "D") + ", " + F(l, "theta") + ", " +
           offset + ", " + outp(l, 0) + ", " + outp(l, 1) + ", " + outp(l, 2) + ")";
  }
  case KernelKind::QKVRoPEGrad:
    return "cpu::qkvRopeGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           I(l, "B") + ", " + I(l, "T") + ", " + I(l, "H") + ", " + I(l, "Hkv") + ", " +
           I(l, "D") + ", " + F(l, "theta") + ", 0, " + outp(l, 0) + ")";
  case KernelKind::FlashAttention:
    return "cpu::flashAttention(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           I(l, "B") + ", " + I(l, "T") + ", " + I(l, "S") + ", " + I(l, "H") + ", " +
           I(l, "Hkv") + ", " + I(l, "D") + ", " + (l.intAttr("causal") ? "true" : "false") +
           ", " + I(l, "window") + ", " + F(l, "scale") + ", " + I(l, "block_q") + ", " +
           I(l, "block_k") + ", " + outp(l, 0) + ", " + outp(l, 1) + ")";
  case KernelKind::FlashAttentionGrad:
    return "cpu::flashAttentionGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           in(l, 3) + ", " + in(l, 4) + ", " + in(l, 5) + ", " + I(l, "B") + ", " + I(l, "T") +
           ", " + I(l, "S") + ", " + I(l, "H") + ", " + I(l, "Hkv") + ", " + I(l, "D") + ", " +
           (l.intAttr("causal") ? "true" : "false") + ", " + I(l, "window") + ", " +
           F(l, "scale") + ", " + I(l, "block_q") + ", " + I(l, "block_k") + ", " +
           outp(l, 0) + ", " + outp(l, 1) + ", " + outp(l, 2) + ")";
  case KernelKind::AttentionKVCache:
    return "cpu::attentionKVCache(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) + ", " +
           outp(l, 1) + ", " + outp(l, 2) + ", " + I(l, "capacity") + ", " +
           scalar(l.inputs[3]) + ", " + I(l, "C") + ", " + I(l, "H") + ", " + I(l, "Hkv") +
           ", " + I(l, "D") + ", " + I(l, "window") + ", " + F(l, "scale") + ", " +
           outp(l, 0) + ")";
  case KernelKind::CrossEntropy:
    return "if (int64_t bad = 0; !cpu::fusedCrossEntropy(" + in(l, 0) + ", " + in(l, 1) +
           ", " + I(l, "rows") + ", " + I(l, "vocab") + ", " + I(l, "ignore_index") + ", " +
           outp(l, 0) + ", " + outp(l, 1) + ", &bad)) fail(\"" + escape(l.origin) +
           "\", \"target id out of range\", bad)";
  case KernelKind::CrossEntropyGrad:
    return "cpu::fusedCrossEntropyGrad(" + in(l, 0) + ", " + in(l, 1) + ", " + in(l, 2) +
           ", " + scalar(l.inputs[3]) + ", " + I(l, "rows") + ", " + I(l, "vocab") + ", " +
           I(l, "ignore_index") + ", " + outp(l, 0) + ")";
  case KernelKind::LRSchedule:
    return "*" + outp(l, 0) + " = cpu::lrSchedule(" + scalar(l.inputs[0]) + ", " +
           scalar(l.inputs[1]) + ", " + scalar(l.inputs[2]) + ", " + I(l, "warmup") + ", " +
           F(l, "floor") + ")";
  case KernelKind::GradClip: {
    size_t n = l.inputs.size() - 1;
    std::string grads, sizes;
    for (size_t i = 0; i < n; ++i) {
      grads += (i ? ", " : "") + in(l, i);
      sizes += (i ? ", " : "") + std::to_string(l.inputs[i].elements());
    }
    return "{ static const int64_t sizes[] = {" + sizes + "}; const float *grads[] = {" + grads +
           "}; cpu::gradClip(grads, sizes, " + std::to_string(n) + ", " +
           scalar(l.inputs[n]) + ", " + F(l, "max_norm") + ", " + outp(l, 0) + ", " +
           outp(l, 1) + "); }";
  }
  case KernelKind::Pointwise: {
    // The body inline in a lambda the kernel's parallel loop calls per element.
    static const char *const math[5] = {"std::exp", "std::log", "std::sqrt", "cpu::rsqrt",
                                        "cpu::maximum"};
    std::string captures;
    for (size_t k = 0; k < l.inputs.size(); ++k)
      captures += "in" + std::to_string(k) + " = " + in(l, k) + ", ";
    return "cpu::pointwise(" + I(l, "n") + ", [" + captures + "out = " + outp(l, 0) +
           "](int64_t i) { " + pointwiseBody(l, math) + " })";
  }
  // The ranks' collectives, through the run's communicator (MPI or one process); blocking,
  // so the one CPU stream stays in order.
  case KernelKind::AllGather:
    return "comm(ctx, " + I(l, "axis") + ").allGather(" + in(l, 0) + ", " + outp(l, 0) + ", " + I(l, "n") + ", \"" +
           escape(what) + "\")";
  case KernelKind::ReduceScatter:
    return "comm(ctx, " + I(l, "axis") + ").reduceScatterSum(" + in(l, 0) + ", " + outp(l, 0) + ", " + I(l, "n") +
           ", \"" + escape(what) + "\")";
  case KernelKind::AllReduce: {
    // In place on the output (a copy of the input first, unless they are one buffer).
    const BufferRef &a = l.inputs[0], &b = l.outputs[0];
    bool same = a.space == b.space && a.index == b.index && a.offset == b.offset;
    return std::string("{ ") +
           (same ? "" : "cpu::copy(" + in(l, 0) + ", " + I(l, "n") + ", " + outp(l, 0) + "); ") +
           "comm(ctx, " + I(l, "axis") + ").allReduceSum(" + outp(l, 0) + ", " + I(l, "n") +
           ", \"" + escape(what) + "\"); }";
  }
  case KernelKind::AdamW:
    return "cpu::adamw(" + outp(l, 0) + ", " + in(l, 1) + ", " + outp(l, 1) + ", " +
           outp(l, 2) + ", " + I(l, "n") + ", " + scalar(l.inputs[4]) + ", " +
           scalar(l.inputs[5]) + ", " + scalar(l.inputs[6]) + ", " + F(l, "beta1") + ", " +
           F(l, "beta2") + ", " + F(l, "eps") + ", " + F(l, "weight_decay") + ")";
  }
  return "/* unknown kernel */";
}



} // namespace

void llamac::kir::emitCpuPreamble(llvm::raw_ostream &os) {
  os
     << "#include \"runtime/Communicator.h\"\n"
     << "#include \"runtime/Device.h\"\n"
     << "#include \"runtime/Program.h\"\n"
     << "#include \"runtime/cpu/CpuKernels.h\"\n\n"
     << "#include <cmath>\n#include <cstddef>\n#include <cstdint>\n#include <cstdio>\n"
     << "#include <cstdlib>\n\n"
     << "using namespace llamac;\n\n"
     << "namespace {\n\n"
     << "template <class T> T *at(std::byte *base, int64_t offset) {\n"
     << "  return reinterpret_cast<T *>(base + offset);\n}\n"
     << "template <class T> T *at(void *base, int64_t offset) {\n"
     << "  return reinterpret_cast<T *>(static_cast<std::byte *>(base) + offset);\n}\n\n"
     << "[[noreturn]] void fail(const char *origin, const char *what, int64_t index) {\n"
     << "  std::fprintf(stderr, \"error: %s (index %lld) in the kernel of %s\\n\", what,\n"
     << "               static_cast<long long>(index), origin);\n"
     << "  std::exit(1);\n}\n\n"
     << "// The ranks of a sharded program's run (its collectives).\n"
     << "[[maybe_unused]] rt::Communicator &comm(rt::Context &ctx, int axis) {\n"
     << "  if (!ctx.grid[axis]) {\n"
     << "    std::fprintf(stderr, \"error: a sharded program was run without a communicator\\n\");\n"
     << "    std::exit(1);\n  }\n  return *ctx.grid[axis];\n}\n\n"
     << "// Times the launch when the driver profiles.\n"
     << "#define LAUNCH(kernel, ...)                                                  \\\n"
     << "  do {                                                                       \\\n"
     << "    if (ctx.profiler) {                                                      \\\n"
     << "      rt::Timer timer;                                                       \\\n"
     << "      __VA_ARGS__;                                                           \\\n"
     << "      ctx.profiler->add(kernel, timer.seconds());                            \\\n"
     << "    } else {                                                                 \\\n"
     << "      __VA_ARGS__;                                                           \\\n"
     << "    }                                                                        \\\n"
     << "  } while (0)\n\n";
}

std::string llamac::kir::emitCpuCall(const Launch &launch) { return call(launch); }

std::string llamac::kir::emitCpuPointer(const BufferRef &buffer, bool isConst) {
  return ptr(buffer, isConst);
}

void llamac::kir::emitCpu(const Program &p, const std::string &command, llvm::raw_ostream &os) {
  os << "// Generated by llamac: " << command << "\n"
     << "// Model @" << p.modelName << ", mode " << p.mode << ", target " << p.target
     << ". Do not edit: recompile the model instead.\n"
     ;
  emitCpuPreamble(os);

  for (const Function &f : p.functions) {
    os << "// @" << f.name << ": " << f.launches.size() << " launches, arena " << f.arenaBytes
       << " bytes (" << f.buffersBytes << " without reuse)\n";
    os << "void fn_" << identifier(f.name)
       << "(rt::Context &ctx, void *const *in, void *const *out) {\n"
       << "  [[maybe_unused]] std::byte *A = ctx.arena;\n"
       << "  [[maybe_unused]] std::byte *P = ctx.params;\n"
       << "  [[maybe_unused]] std::byte *C = ctx.cache;\n"
       << "  (void)in;\n  (void)out;\n";
    for (size_t i = 0; i < f.launches.size(); ++i) {
      const Launch &l = f.launches[i];
      os << "  // " << i << ": " << l.origin << "\n";
      for (int w : l.waits)
        os << "  // wait event " << w << " (one stream: already in order)\n";
      os << "  LAUNCH(\"" << kernelName(l.kind) << "\", " << call(l, collectiveWhat(p, l))
         << ");\n";
      if (l.records >= 0)
        os << "  // record event " << l.records << "\n";
    }
    os << "}\n\n";
    emitTensorSpecs(f.inputs, "kIn_" + identifier(f.name), os);
    emitTensorSpecs(f.outputs, "kOut_" + identifier(f.name), os);
    os << "\n";
  }

  emitProgramSpec(p, "", os);
}
