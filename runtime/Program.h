//===- Program.h - what a compiled llamac program exposes to the runtime --*- C++ -*-===//
//
// `llamac compile --target T --mode train|infer` emits one C++ (or CUDA) translation unit
// that defines a ProgramSpec and a main() calling trainMain or inferMain with it. The spec
// describes the compiled program completely: the model's hyper-parameters, every parameter
// and optimizer-state tensor with its place in one parameter region, and every entry
// function with its tensor signature and the arena (scratch memory) its memory plan needs.
// The drivers (TrainMain.cpp, InferMain.cpp) and the tests use nothing else.
//
// Memory regions, allocated by the driver through the Device interface (Device.h):
//   params  every tensor of ProgramSpec::params at its offset (weights, gradients, moments)
//   arena   scratch shared by all functions (max of their plans; one function runs at a time)
//   cache   the inference KV cache (infer mode), cacheBytes
//
// Entry functions take arrays of pointers to their inputs and outputs, in the order of
// FunctionSpec::inputs / outputs; rank-0 tensors are single scalars.
//
//   train mode: train_grad(tokens i32[B,T], targets i32[B,T]) -> loss f32[]
//                 accumulates d(loss)/d(param) into the grad.* tensors
//               train_update(step i64[], lr f32[], total i64[], micro_batches f32[])
//                 -> (lr_t f32[], grad_norm f32[])
//                 clips, applies AdamW to every weight, zeroes grad.*
//               loss(tokens, targets) -> loss f32[]           (validation)
//               forward(tokens) -> logits f32[B,T,V]; loss_grad(tokens, targets) -> (loss,
//                 one gradient per trainable weight, in ProgramSpec weight order)
//   infer mode: prefill(tokens i32[1,C], pos i64[]) -> logits f32[1,C,V]
//               decode(tokens i32[1,1], pos i64[]) -> logits f32[1,1,V]
//                 both read the KV cache for positions < pos and write positions
//                 pos..pos+C-1 (modulo `window` for sliding-window models)
//               forward(tokens i32[1,S]) -> logits f32[1,S,V], S = maxSeqLen, no cache
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_PROGRAM_H
#define LLAMAC_RUNTIME_PROGRAM_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace llamac::rt {

class Communicator;
class Device;
class Profiler;

enum class ElemType : int32_t { F32 = 0, I32 = 1, I64 = 2, I8 = 3 };

/// The shape and element type of an entry function's input or output.
struct TensorSpec {
  const char *name;
  ElemType type;
  int32_t rank;
  int64_t shape[6];
};

enum class ParamInit : int32_t { Zeros = 0, Ones = 1, Normal = 2 };

/// What a tensor of the parameter region is, from its name: a weight ("layers.0.wq"), its
/// accumulated gradient ("grad.<weight>"), or AdamW moments ("adamw.m.<weight>",
/// "adamw.v.<weight>").
enum class ParamRole : int32_t { Weight = 0, Gradient = 1, AdamM = 2, AdamV = 3 };

/// One weight of an FSDP unit: where it starts in the unit's flat buffer, its shape and its
/// initialiser. Its gradient and AdamW moments sit at the same place in the unit's other
/// three shards.
struct ShardMember {
  const char *name;
  int64_t offset;
  int64_t elements;
  int32_t rank;
  int64_t shape[4];
  ParamInit init;
  double std;
};

/// An FSDP unit (`llamac compile --fsdp N`, passes/PlanFsdp.cpp): its members flattened,
/// concatenated and zero-padded to `padded` elements; rank r of the `ranks` of a shard
/// group holds elements [r S, (r+1) S), S = padded / ranks, in each of the parameters fsdp.<unit> (weights),
/// fsdp.grad.<unit>, fsdp.adamw.m.<unit> and fsdp.adamw.v.<unit>.
struct ShardLayout {
  int64_t ranks, flat, padded;
  int32_t numMembers;
  const ShardMember *members;
  /// Bytes per element of the unit as gathered: 4 (f32), or 2 (bf16, mixed precision).
  int32_t gatherBytes;
};

/// One f32 tensor of the parameter region.
struct ParamSpec {
  const char *name;
  ParamRole role;
  int64_t offset; ///< bytes from the start of the region, a multiple of 64
  int64_t elements;
  int32_t rank;
  int64_t shape[4];
  ParamInit init;
  double std; ///< for ParamInit::Normal
  /// How the region stores it: F32, or I8 for weights quantised at load time (inference with
  /// `llamac compile --weights int8`): `elements` int8 values at `offset`, row by row, and
  /// one f32 scale per row (shape[0] of them) at `scaleOffset`; value = q * scale, with
  /// scale = max |row| / 127 (runtime/cpu/Quantize.h).
  ElemType storage = ElemType::F32;
  int64_t scaleOffset = -1;
  /// The unit this tensor is the rank's shard of (FSDP), or null.
  const ShardLayout *shard = nullptr;
};

/// What an entry function's generated code gets: base pointers of the regions.
struct Context {
  std::byte *params = nullptr;
  std::byte *arena = nullptr;
  std::byte *cache = nullptr;
  /// When set, the generated code times every kernel launch into it.
  Profiler *profiler = nullptr;
  /// The device's own state for generated code (Device::backend(): CUDA streams, cuBLASLt).
  void *backend = nullptr;
  /// The ranks of the run, for the collectives of a sharded (FSDP) program: all of them,
  /// and by grid axis the axis' group of this rank (the ranks whose other coordinates equal
  /// its own): one axis for FSDP (all ranks), two for hybrid sharding (its replicas, then
  /// its shard group).
  Communicator *comm = nullptr;
  Communicator *grid[2] = {nullptr, nullptr};
};

using EntryFn = void (*)(Context &ctx, void *const *inputs, void *const *outputs);

struct FunctionSpec {
  const char *name;
  int32_t numInputs;
  const TensorSpec *inputs;
  int32_t numOutputs;
  const TensorSpec *outputs;
  int64_t arenaBytes;   ///< the plan's peak
  int64_t buffersBytes; ///< the sum of its buffers: what it would take without reuse
  int32_t numLaunches;
  EntryFn fn;
};

struct ProgramSpec {
  const char *modelName;
  const char *mode;   ///< "train" or "infer"
  const char *target; ///< "cpu" or "cuda"
  /// Compiled shapes: the micro-batch and sequence of train_grad (train), or 1 and the
  /// prefill chunk (infer).
  int64_t batch, seq;
  int64_t vocab, dim, layers, heads, kvHeads, headDim, ffnDim, maxSeqLen;
  int64_t window; ///< sliding-window attention span, 0 for none
  double normEps, ropeTheta;
  /// Training FLOPs per token at `seq` (6 x weights in matmuls + attention), for model FLOP/s.
  double trainFlopsPerToken;
  /// Forward FLOPs per generated token (2 x weights in matmuls), for inference reports.
  double inferFlopsPerToken;
  int64_t trainableElements;
  const ParamSpec *params;
  int32_t numParams;
  int64_t paramBytes;
  const FunctionSpec *functions;
  int32_t numFunctions;
  int64_t arenaBytes; ///< max over the functions
  int64_t cacheBytes; ///< KV cache (infer mode), else 0
  /// Compile-time settings (pipeline options, warm-up, ...) as key/value text, recorded in
  /// checkpoints and printed by --info.
  const char *const *configKeys;
  const char *const *configValues;
  int32_t numConfig;
  /// The data-parallel ranks the program is sharded over (`llamac compile --fsdp N`), 0 when
  /// it is not sharded; it must be started on exactly that many. With `fsdpReplicas` R > 1
  /// (hybrid sharding) they form R groups of fsdpRanks / R consecutive ranks: each unit is
  /// sharded within a group (ShardLayout::ranks = the group's size) and replicated across.
  int32_t fsdpRanks = 0;
  int32_t fsdpReplicas = 1;
  /// Opens the device the program was compiled for (createCudaDevice for --target cuda);
  /// null means the CPU. `threads` is the CPU thread count (--threads).
  std::unique_ptr<Device> (*createDevice)(int threads, std::string *error) = nullptr;
};

/// The entry function `name`, or null.
const FunctionSpec *findFunction(const ProgramSpec &program, std::string_view name);
/// The parameter `name`, or null.
const ParamSpec *findParam(const ProgramSpec &program, std::string_view name);

/// The drivers: parse flags, load data / checkpoints, run. They return the process's exit
/// status and never throw; every failure prints one message naming the problem.
int trainMain(int argc, char **argv, const ProgramSpec &program);
int inferMain(int argc, char **argv, const ProgramSpec &program);

} // namespace llamac::rt

#endif
