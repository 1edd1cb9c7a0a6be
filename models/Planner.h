//===- Planner.h - predict a sharded training run at scale ----------------*- C++ -*-===//
//
// `llamac plan`: step time, tokens/s per device, MFU, memory per device and communication
// of data-parallel training with fully sharded parameters (FSDP / ZeRO-3), from the model's
// own FLOPs, parameter and activation bytes (ModelInfo) and a device and network model:
// compute at a sustained fraction of the device's dense bf16 peak; collectives as rings
// (alpha-beta: an all-gather or reduce-scatter over n ranks moves (n-1)/n of the data through
// each rank's slowest link, an all-reduce twice that); communication overlapped with compute
// except the first unit's gather and the last unit's reduction. The constants and their
// sources are in docs/PLANNER.md.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_MODELS_PLANNER_H
#define LLAMAC_MODELS_PLANNER_H

#include "models/ModelInfo.h"

#include <string>
#include <vector>

namespace llamac {

struct DeviceSpec {
  std::string name;
  double peakFlops;       ///< dense bf16, FLOP/s
  double efficiency;      ///< sustained fraction of peak in a training step's compute
  double memoryBytes;
  int gpusPerNode;
  double intraBandwidth;  ///< per GPU, one direction, bytes/s (NVLink)
  double interBandwidth;  ///< per GPU, one direction, bytes/s (InfiniBand / RoCE)
  double intraLatency, interLatency; ///< seconds per ring step
};

/// "a100-80gb", "h100-80gb"; null for another name.
const DeviceSpec *findDevice(const std::string &name);
std::vector<std::string> deviceNames();

struct PlanOptions {
  int64_t devices = 8;
  /// "fsdp": shard over every device; "hybrid": shard within a node, replicate across
  /// nodes (a 2-D grid).
  std::string strategy = "hybrid";
  /// Tokens each device processes per optimizer step.
  int64_t tokensPerDevice = 2048;
  /// Gathered units kept ahead of the one computing.
  int prefetch = 1;
  /// The remat policy whose kept activations count (ModelInfo::remat).
  std::string remat = "selective";
  /// For GPU-hours; 0 leaves them out.
  double totalTokens = 0;
  /// The elements of each unit the compiled program gathers and reduce-scatters
  /// (llamac-plan-fsdp's units, fsdpUnitSizes), before padding to the shard group; empty:
  /// one unit per layer plus the embedding and the output.
  std::vector<int64_t> unitElements;
};

struct PlanResult {
  int64_t shardGroup = 0, replicas = 0;
  double computeSeconds = 0, commSeconds = 0, exposedCommSeconds = 0, stepSeconds = 0;
  double tokensPerSecondPerDevice = 0, mfu = 0, gpuHours = 0;
  /// The units gathered: how many, and the elements of all and of the largest, padded.
  int64_t units = 0;
  double gatheredElements = 0, largestUnitElements = 0;
  /// Bytes each device sends per step, by collective kind.
  double allGatherBytes = 0, reduceScatterBytes = 0, allReduceBytes = 0;
  /// Memory per device.
  double paramBytes = 0, gradBytes = 0, optimizerBytes = 0, gatheredBytes = 0,
         activationBytes = 0, totalBytes = 0;
  /// The same state without sharding: 16 bytes per parameter (bf16 weights and gradients,
  /// fp32 master weights and AdamW moments; ZeRO's mixed-precision Adam).
  double unshardedStateBytes = 0;
};

/// Fails (false, `error`) for a device count the strategy cannot use.
bool plan(const ModelInfo &info, const DeviceSpec &device, const PlanOptions &options,
          PlanResult &result, std::string *error);

void printPlan(const ModelInfo &info, const DeviceSpec &device, const PlanOptions &options,
               const PlanResult &result, llvm::raw_ostream &os);

} // namespace llamac

#endif
