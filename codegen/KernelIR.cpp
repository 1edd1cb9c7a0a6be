//===- KernelIR.cpp - names, verification and printing of the kernel-level IR -------===//
#include "codegen/KernelIR.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace llamac::kir;

const char *llamac::kir::elemTypeName(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "f32";
  case ElemType::I32:
    return "i32";
  case ElemType::I64:
    return "i64";
  case ElemType::I8:
    return "i8";
  case ElemType::BF16:
    return "bf16";
  }
  return "?";
}

int64_t llamac::kir::elemBytes(ElemType t) {
  return t == ElemType::I64 ? 8 : t == ElemType::I8 ? 1 : t == ElemType::BF16 ? 2 : 4;
}

const char *llamac::kir::spaceName(Space s) {
  switch (s) {
  case Space::Arena:
    return "arena";
  case Space::Param:
    return "param";
  case Space::Cache:
    return "cache";
  case Space::Input:
    return "in";
  case Space::Output:
    return "out";
  }
  return "?";
}

namespace {

/// Operand and result counts of each kind (-1: any number, at least one).
struct Signature {
  KernelKind kind;
  const char *name;
  int inputs, outputs;
};

const Signature kSignatures[] = {
    {KernelKind::GemmNT, "gemm_nt", 2, 1},
    {KernelKind::GemmNN, "gemm_nn", 2, 1},
    {KernelKind::GemmTN, "gemm_tn", 2, 1},
    {KernelKind::GemmNTQ8, "gemm_nt_q8", 2, 1},
    {KernelKind::Fill, "fill", 0, 1},
    {KernelKind::Copy, "copy", 1, 1},
    {KernelKind::CopyRows, "copy_rows", 1, 1},
    // n elements f32 -> bf16 (rounded to nearest even) or bf16 -> f32 (exact).
    {KernelKind::Cast, "cast", 1, 1},
    {KernelKind::Binary, "binary", 2, 1},
    {KernelKind::Unary, "unary", 1, 1},
    {KernelKind::Scale, "scale", 1, 1},
    {KernelKind::Embedding, "embedding", 2, 1},
    {KernelKind::EmbeddingGrad, "embedding_grad", 2, 1},
    {KernelKind::RMSNorm, "rms_norm", 2, 1},
    {KernelKind::RMSNormGrad, "rms_norm_grad", 3, 2},
    {KernelKind::AddRMSNorm, "add_rms_norm", 3, 2},
    {KernelKind::AddRMSNormGrad, "add_rms_norm_grad", 4, 2},
    {KernelKind::SwiGLU, "swiglu", 1, 1},
    {KernelKind::SwiGLUGrad, "swiglu_grad", 2, 1},
    // The optional last input is the position offset (an i64 scalar).
    {KernelKind::QKVRoPE, "qkv_rope", -1, 3},
    {KernelKind::QKVRoPEGrad, "qkv_rope_grad", -1, 1},
    {KernelKind::FlashAttention, "flash_attention", 3, 2},
    {KernelKind::FlashAttentionGrad, "flash_attention_grad", 6, 3},
    // q, k, v, pos; results: out, then the cache's K and V (read and written).
    {KernelKind::AttentionKVCache, "attention_kv_cache", 4, 3},
    {KernelKind::CrossEntropy, "cross_entropy", 2, 2},
    {KernelKind::CrossEntropyGrad, "cross_entropy_grad", 4, 1},
    {KernelKind::LRSchedule, "lr_schedule", 3, 1},
    {KernelKind::GradClip, "grad_clip", -1, 2},
    // param, grad, m, v are updated in place: the outputs name the same storage as
    // inputs 0, 2, 3; then lr, step, grad_scale scalars as inputs 4..6.
    {KernelKind::AdamW, "adamw", 7, 3},
    // Any number of inputs of the output's element count; the body says what it computes.
    {KernelKind::Pointwise, "pointwise", -1, 1},
    // The rank's shard -> the whole unit; a unit's gradients -> the rank's shard of their
    // sum; a value -> its sum over the ranks.
    {KernelKind::AllGather, "all_gather", 1, 1},
    {KernelKind::ReduceScatter, "reduce_scatter", 1, 1},
    {KernelKind::AllReduce, "all_reduce", 1, 1},
};

const Signature &signatureOf(KernelKind kind) {
  for (const Signature &s : kSignatures)
    if (s.kind == kind)
      return s;
  return kSignatures[0];
}

std::string describe(const BufferRef &b) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << spaceName(b.space);
  if (b.space == Space::Input || b.space == Space::Output || b.space == Space::Param)
    os << b.index;
  os << "[" << b.offset << ":" << elemTypeName(b.type) << "[";
  for (size_t i = 0; i < b.shape.size(); ++i)
    os << (i ? "x" : "") << b.shape[i];
  os << "]";
  if (b.scaleOffset >= 0)
    os << " scales " << b.scaleOffset;
  os << "]";
  return s;
}

} // namespace

const char *llamac::kir::kernelName(KernelKind k) { return signatureOf(k).name; }

bool llamac::kir::isCollective(KernelKind k) {
  return k == KernelKind::AllGather || k == KernelKind::ReduceScatter ||
         k == KernelKind::AllReduce;
}

const char *llamac::kir::scalarOpName(ScalarOp::Kind kind) {
  static const char *const names[] = {"in",  "const", "add", "sub",  "mul",  "div",
                                      "max", "neg",   "exp", "log",  "sqrt", "rsqrt"};
  return names[kind];
}

int64_t BufferRef::elements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t ShardMember::elements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t Param::elements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t Launch::intAttr(const std::string &name) const {
  for (auto &[k, v] : ints)
    if (k == name)
      return v;
  return 0;
}

double Launch::floatAttr(const std::string &name) const {
  for (auto &[k, v] : floats)
    if (k == name)
      return v;
  return 0;
}

int64_t Program::arenaBytes() const {
  int64_t m = 0;
  for (const Function &f : functions)
    m = std::max(m, f.arenaBytes);
  return m;
}

int64_t Program::trainableElements() const {
  int64_t n = 0;
  for (const Param &p : params)
    if (p.role == ParamRole::Weight)
      n += p.elements();
  return n;
}

int64_t Program::findParam(const std::string &name) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name)
      return int64_t(i);
  return -1;
}

bool llamac::kir::verify(const Program &program, std::string *why) {
  for (const Function &f : program.functions) {
    for (size_t li = 0; li < f.launches.size(); ++li) {
      const Launch &l = f.launches[li];
      auto fail = [&](const std::string &what) {
        if (why)
          *why = "@" + f.name + " launch " + std::to_string(li) + " (" + kernelName(l.kind) +
                 ", from " + l.origin + "): " + what;
        return false;
      };
      const Signature &sig = signatureOf(l.kind);
      if (sig.inputs >= 0 && int(l.inputs.size()) != sig.inputs)
        return fail("expects " + std::to_string(sig.inputs) + " inputs, has " +
                    std::to_string(l.inputs.size()));
      if (sig.outputs >= 0 && int(l.outputs.size()) != sig.outputs)
        return fail("expects " + std::to_string(sig.outputs) + " outputs, has " +
                    std::to_string(l.outputs.size()));
      if (l.kind == KernelKind::Pointwise) {
        if (l.body.empty())
          return fail("has an empty body");
        for (size_t k = 0; k < l.body.size(); ++k) {
          const ScalarOp &o = l.body[k];
          bool unary = o.kind >= ScalarOp::Neg, binary = o.kind >= ScalarOp::Add && !unary;
          if (o.kind == ScalarOp::Input ? (o.a < 0 || o.a >= int(l.inputs.size()))
                                        : ((unary || binary) && (o.a < 0 || o.a >= int(k))) ||
                                              (binary && (o.b < 0 || o.b >= int(k))))
            return fail("body entry " + std::to_string(k) + " (" + scalarOpName(o.kind) +
                        ") names an operand it cannot");
        }
        for (const BufferRef &b : l.inputs)
          if (b.elements() != l.outputs[0].elements())
            return fail("input " + describe(b) + " does not have the output's element count");
      }
      if (isCollective(l.kind)) {
        int64_t n = l.intAttr("n"), ranks = l.intAttr("ranks");
        int64_t in = l.kind == KernelKind::ReduceScatter ? n * ranks : n;
        int64_t outN = l.kind == KernelKind::AllGather ? n * ranks : n;
        int64_t axis = l.intAttr("axis");
        if (axis < 0 || axis >= int64_t(program.fsdpGrid.size()) ||
            ranks != program.fsdpGrid[size_t(axis)] || ranks < 1)
          return fail("is over " + std::to_string(ranks) + " ranks along grid axis " +
                      std::to_string(axis) + ", which the program's grid does not have");
        // Sums are of f32; a gather may move bf16 (mixed precision).
        bool typesOk = l.inputs[0].type == l.outputs[0].type &&
                       (l.inputs[0].type == ElemType::F32 ||
                        (l.kind == KernelKind::AllGather && l.inputs[0].type == ElemType::BF16));
        if (!typesOk ||
            l.inputs[0].elements() != in || l.outputs[0].elements() != outN)
          return fail("moves " + describe(l.inputs[0]) + " to " + describe(l.outputs[0]) +
                      ", which do not fit n = " + std::to_string(n));
      }
      auto check = [&](const BufferRef &b) -> bool {
        if (b.offset < 0)
          return fail("buffer " + describe(b) + " has a negative offset");
        int64_t end = b.offset + b.bytes();
        switch (b.space) {
        case Space::Arena:
          if (end > f.arenaBytes)
            return fail("buffer " + describe(b) + " ends past the arena (" +
                        std::to_string(f.arenaBytes) + " bytes)");
          break;
        case Space::Param:
          // A view may span parameters laid out back to back (a concatenation).
          if (b.index < 0 || b.index >= int64_t(program.params.size()) ||
              b.offset < program.params[b.index].offset || end > program.paramBytes)
            return fail("buffer " + describe(b) + " is outside the parameter region");
          break;
        case Space::Cache:
          if (end > program.cacheBytes)
            return fail("buffer " + describe(b) + " ends past the KV cache");
          break;
        case Space::Input:
        case Space::Output: {
          const auto &sigs = b.space == Space::Input ? f.inputs : f.outputs;
          if (b.index < 0 || b.index >= int64_t(sigs.size()))
            return fail("buffer " + describe(b) + " names no argument");
          int64_t n = 1;
          for (int64_t d : sigs[b.index].shape)
            n *= d;
          if (end > n * elemBytes(sigs[b.index].type))
            return fail("buffer " + describe(b) + " is larger than its argument");
          break;
        }
        }
        return true;
      };
      for (const BufferRef &b : l.inputs)
        if (!check(b))
          return false;
      for (const BufferRef &b : l.outputs) {
        if (b.space == Space::Input)
          return fail("writes its input argument " + describe(b));
        if (!check(b))
          return false;
      }
    }
  }
  return true;
}

void llamac::kir::print(const Program &p, llvm::raw_ostream &os) {
  os << "kernel program @" << p.modelName << " mode " << p.mode << " target " << p.target
     << " batch " << p.batch << " seq " << p.seq << "\n";
  os << "params " << p.params.size() << " tensors, " << p.paramBytes << " bytes; cache "
     << p.cacheBytes << " bytes\n";
  if (p.fsdpRanks) {
    os << "fsdp " << p.fsdpRanks << " ranks, grid ";
    for (size_t i = 0; i < p.fsdpGrid.size(); ++i)
      os << (i ? "x" : "") << p.fsdpGrid[i];
    os << ", " << p.shardLayouts.size() << " units\n";
  }
  for (const Function &f : p.functions) {
    os << "func @" << f.name << "(";
    for (size_t i = 0; i < f.inputs.size(); ++i) {
      os << (i ? ", " : "") << f.inputs[i].name << ": " << elemTypeName(f.inputs[i].type)
         << "[";
      for (size_t d = 0; d < f.inputs[i].shape.size(); ++d)
        os << (d ? "x" : "") << f.inputs[i].shape[d];
      os << "]";
    }
    os << ") arena " << f.arenaBytes << " bytes (" << f.numBuffers << " buffers, "
       << f.buffersBytes << " bytes without reuse), " << f.launches.size() << " launches\n";
    for (size_t i = 0; i < f.launches.size(); ++i) {
      const Launch &l = f.launches[i];
      os << "  " << i << ": " << kernelName(l.kind) << "(";
      for (size_t j = 0; j < l.inputs.size(); ++j)
        os << (j ? ", " : "") << describe(l.inputs[j]);
      os << ") -> (";
      for (size_t j = 0; j < l.outputs.size(); ++j)
        os << (j ? ", " : "") << describe(l.outputs[j]);
      os << ") {";
      bool first = true;
      for (auto &[k, v] : l.ints) {
        os << (first ? "" : ", ") << k << " = " << v;
        first = false;
      }
      for (auto &[k, v] : l.floats) {
        os << (first ? "" : ", ") << k << " = " << llvm::format("%g", v);
        first = false;
      }
      os << "}";
      if (!l.body.empty()) {
        os << " body(";
        for (size_t k = 0; k < l.body.size(); ++k) {
          const ScalarOp &o = l.body[k];
          os << (k ? "; " : "") << "%" << k << " = " << scalarOpName(o.kind);
          if (o.kind == ScalarOp::Input)
            os << " " << o.a;
          else if (o.kind == ScalarOp::Constant)
            os << " " << llvm::format("%g", o.value);
          else {
            os << " %" << o.a;
            if (o.b >= 0)
              os << ", %" << o.b;
          }
        }
        os << ")";
      }
      os << " stream " << l.stream;
      for (int w : l.waits)
        os << " wait " << w;
      if (l.records >= 0)
        os << " record " << l.records;
      os << "\n";
    }
  }
}
