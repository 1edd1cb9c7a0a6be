//===- KernelIR.h - the kernel-level program that emitters consume --------*- C++ -*-===//
//
// The last representation before target code: the tensor-level functions of a compiled
// model lowered (Lower.cpp) to explicit buffers and an ordered list of kernel launches.
//
//   Program   the model's hyper-parameters, the parameter region (every weight and
//             optimizer-state tensor at a fixed offset), the KV-cache region, functions
//   Function  a signature, the memory plan's arena size, and the launch schedule
//   Launch    one kernel kind (KernelKind) with its buffer arguments, integer and float
//             attributes, and where it runs: a stream, events it waits for and records
//   BufferRef a typed, shaped window of one region: the arena (at the plan's offset), the
//             parameter region, the KV cache, or an entry argument / result
//
// Emitters are per target (CpuEmitter.cpp; CUDA beside it) and read nothing else; streams
// and events are part of every launch so that communication schedules (FSDP's gathers on a
// second stream) are launches like any other. The CPU emitter runs everything in order.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_KERNELIR_H
#define LLAMAC_CODEGEN_KERNELIR_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace llvm {
class raw_ostream;
}

namespace llamac::kir {

/// BF16: bfloat16 storage (the bits of the f32 value's top half, rounded to nearest even),
/// of the GEMM operands and results of a mixed-precision program (llamac-mixed-precision);
/// generated code holds it as uint16_t.
enum class ElemType { F32, I32, I64, I8, BF16 };
const char *elemTypeName(ElemType t); // "f32", "i32", "i64", "i8", "bf16"
int64_t elemBytes(ElemType t);

enum class Space { Arena, Param, Cache, Input, Output };
const char *spaceName(Space s);

struct BufferRef {
  Space space = Space::Arena;
  /// Input/Output: the argument or result number. Param: the index into Program::params.
  int64_t index = 0;
  /// Bytes from the start of the region (Arena, Param, Cache) or of the argument.
  int64_t offset = 0;
  ElemType type = ElemType::F32;
  std::vector<int64_t> shape;
  /// An int8 weight's per-row f32 scales, in the parameter region; -1 otherwise.
  int64_t scaleOffset = -1;

  int64_t elements() const;
  int64_t bytes() const { return elements() * elemBytes(type); }
};

/// Every kernel kind, in one place: the CPU and CUDA emitters switch over it, and the tuner
/// keys its database on it. Operand order and attributes of each kind are listed in
/// KernelIR.cpp (kernelSignature) and checked by verify().
enum class KernelKind {
  GemmNT, GemmNN, GemmTN, GemmNTQ8,
  Fill, Copy, CopyRows, Cast,
  Binary, Unary, Scale,
  Embedding, EmbeddingGrad,
  RMSNorm, RMSNormGrad, AddRMSNorm, AddRMSNormGrad,
  SwiGLU, SwiGLUGrad, QKVRoPE, QKVRoPEGrad,
  FlashAttention, FlashAttentionGrad, AttentionKVCache,
  CrossEntropy, CrossEntropyGrad,
  LRSchedule, GradClip, AdamW,
  Pointwise,
  // Collectives over the data-parallel ranks (llamac-plan-fsdp's shard ops), on the
  // communication stream: ints n (elements per rank; all_reduce: elements), axis (of the
  // grid: Program::fsdpGrid), ranks (the group along it), and unit (the index of the
  // parameter moved, for messages; -1 for none).
  AllGather, ReduceScatter, AllReduce,
};
/// Whether `k` is a collective (runs on the communication stream, talks to other ranks).
bool isCollective(KernelKind k);
const char *kernelName(KernelKind k); // "gemm_nt", "rms_norm", ...

/// One scalar operation of a Pointwise launch's body (llama.fused_elementwise): the body is
/// a list in evaluation order; operand `a`, `b` name earlier entries, and the last entry is
/// the element written. Input reads element i of launch input `a`; Constant is `value`.
/// Every entry is an f32 value, rounded as f32 arithmetic rounds.
struct ScalarOp {
  enum Kind { Input, Constant, Add, Sub, Mul, Div, Maximum, Neg, Exp, Log, Sqrt, Rsqrt };
  Kind kind;
  int a = -1, b = -1;
  double value = 0;
};
const char *scalarOpName(ScalarOp::Kind kind); // "in", "const", "add", ...

struct Launch {
  KernelKind kind;
  /// Read-only operands, then written results.
  std::vector<BufferRef> inputs, outputs;
  /// Shapes and settings, by name ("M", "eps", "causal", ...), in a fixed order per kind.
  std::vector<std::pair<std::string, int64_t>> ints;
  std::vector<std::pair<std::string, double>> floats;
  /// Pointwise: the scalar body the target's emitter writes out as its own loop or kernel.
  std::vector<ScalarOp> body;
  /// Execution: the stream it is issued on, events it waits for first, event it records.
  int stream = 0;
  std::vector<int> waits;
  int records = -1;
  /// The op it came from: "llama.rms_norm" at "file:line:col".
  std::string origin;

  int64_t intAttr(const std::string &name) const;
  double floatAttr(const std::string &name) const;
};

struct TensorSig {
  std::string name;
  ElemType type;
  std::vector<int64_t> shape;
};

struct Function {
  std::string name;
  std::vector<TensorSig> inputs, outputs;
  int64_t arenaBytes = 0;
  int64_t buffersBytes = 0;
  int64_t numBuffers = 0;
  std::vector<Launch> launches;
};

enum class ParamRole { Weight, Gradient, AdamM, AdamV };
enum class ParamInit { Zeros, Ones, Normal };

/// One weight of an FSDP unit (llamac-plan-fsdp's `llama.fsdp` attribute): where it starts
/// in the unit's flat buffer, its shape and its initialiser.
struct ShardMember {
  std::string name;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  ParamInit init = ParamInit::Zeros;
  double std = 0;
  int64_t elements() const;
};

/// A unit flattened and zero-padded to `padded` elements, of which each of `ranks` ranks
/// holds padded / ranks: rank r the elements [r S, (r+1) S).
struct ShardLayout {
  int64_t ranks = 0, flat = 0, padded = 0;
  std::vector<ShardMember> members;
  /// Bytes per element its gathers move: 4, or 2 for a unit gathered in bf16 (mixed
  /// precision); the largest over the program's functions, 0 until one is lowered.
  int64_t gatherBytes = 0;
  int64_t shard() const { return ranks ? padded / ranks : 0; }
};

struct Param {
  std::string name;
  ParamRole role;
  ParamInit init;
  double std = 0;
  std::vector<int64_t> shape;
  int64_t offset = 0; ///< in the parameter region, 64-byte aligned
  /// Stored as int8 rows with one f32 scale per row at scaleOffset (runtime/cpu/Quantize.h).
  bool quantized = false;
  int64_t scaleOffset = -1;
  /// For a shard of an FSDP unit (fsdp.<unit>, fsdp.grad.<unit>, ...): the unit's layout,
  /// an index into Program::shardLayouts; -1 otherwise.
  int64_t shard = -1;
  int64_t elements() const;
  int64_t storageBytes() const { return elements() * (quantized ? 1 : 4); }
};

struct Program {
  std::string modelName, mode, target;
  int64_t batch = 0, seq = 0;
  int64_t vocab = 0, dim = 0, layers = 0, heads = 0, kvHeads = 0, headDim = 0, ffnDim = 0,
          maxSeqLen = 0, window = 0;
  double normEps = 0, ropeTheta = 0;
  double trainFlopsPerToken = 0, inferFlopsPerToken = 0;
  std::vector<Param> params;
  int64_t paramBytes = 0;
  int64_t cacheBytes = 0;
  std::vector<Function> functions;
  /// FSDP (llamac-plan-fsdp): the ranks the program runs on (0: not sharded), the grid they
  /// form ({ranks}, or {replicas, group} for hybrid sharding, where the units are sharded
  /// along the last axis) and the layout of each unit.
  int64_t fsdpRanks = 0;
  std::vector<int64_t> fsdpGrid;
  std::vector<ShardLayout> shardLayouts;
  /// Compile-time settings, recorded in the executable.
  std::map<std::string, std::string> config;

  int64_t arenaBytes() const;
  int64_t trainableElements() const;
  /// Index of the parameter `name`, or -1.
  int64_t findParam(const std::string &name) const;
};

/// Checks every launch: operand counts and types of its kind, buffers inside their region
/// (arena within the function's arena, params within the parameter region, ...). On failure
/// `why` names the function, launch and problem.
bool verify(const Program &program, std::string *why);

/// The textual form (`llamac compile --emit kernels`), one launch per line:
///   %12 = rms_norm(arena[1024:f32[4x64x64]], param[3:f32[64]]) -> arena[0:f32[4x64x64]]
///         {rows = 256, dim = 64, eps = 1e-05} stream 0
void print(const Program &program, llvm::raw_ostream &os);

} // namespace llamac::kir

#endif
