//===- Planner.cpp - predict a sharded training run at scale -----------------------===//
#include "models/Planner.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

using namespace llamac;

namespace {

// docs/PLANNER.md gives the source of every number.
const DeviceSpec kDevices[] = {
    {"a100-80gb", 312e12, 0.52, 80e9, 8, 300e9, 25e9, 5e-6, 10e-6},
    {"h100-80gb", 989e12, 0.52, 80e9, 8, 450e9, 50e9, 5e-6, 10e-6},
};

/// A ring all-gather or reduce-scatter of `bytes` (the whole tensor) over `n` ranks: each
/// rank sends (n-1)/n of it, in n-1 steps.
double ringSeconds(double bytes, int64_t n, double bandwidth, double latency) {
  if (n <= 1)
    return 0;
  return double(n - 1) / double(n) * bytes / bandwidth + double(n - 1) * latency;
}

} // namespace

const DeviceSpec *llamac::findDevice(const std::string &name) {
  for (const DeviceSpec &d : kDevices)
    if (d.name == name)
      return &d;
  return nullptr;
}

std::vector<std::string> llamac::deviceNames() {
  std::vector<std::string> names;
  for (const DeviceSpec &d : kDevices)
    names.push_back(d.name);
  return names;
}

bool llamac::plan(const ModelInfo &info, const DeviceSpec &device, const PlanOptions &o,
                  PlanResult &r, std::string *error) {
  auto fail = [&](const std::string &message) {
    if (error)
      *error = message;
    return false;
  };
  if (o.devices <= 0 || o.tokensPerDevice <= 0 || o.prefetch < 0)
    return fail("--devices, --tokens-per-device must be positive and --prefetch >= 0");
  if (o.strategy == "hybrid") {
    r.shardGroup = std::min<int64_t>(o.devices, device.gpusPerNode);
    if (o.devices % r.shardGroup != 0)
      return fail("--strategy hybrid shards within nodes of " +
                  std::to_string(device.gpusPerNode) + " devices; " +
                  std::to_string(o.devices) + " devices is not a whole number of nodes");
  } else if (o.strategy == "fsdp") {
    r.shardGroup = o.devices;
  } else {
    return fail("--strategy must be fsdp or hybrid, not '" + o.strategy + "'");
  }
  r.replicas = o.devices / r.shardGroup;
  const double N = double(info.numParams);
  const double G = double(r.shardGroup);

  // Compute: the model's training FLOPs at the sustained rate.
  double flops = double(o.tokensPerDevice) * info.trainingFlopsPerToken();
  r.computeSeconds = flops / (device.peakFlops * device.efficiency);

  // Communication per step and device. Within the shard group: bf16 parameters gathered for
  // the forward and again for the backward, fp32 gradients reduce-scattered. Across
  // replicas: the fp32 gradient shard all-reduced. A group larger than a node runs its rings
  // through the inter-node links.
  double groupBandwidth =
      r.shardGroup > device.gpusPerNode ? device.interBandwidth : device.intraBandwidth;
  double groupLatency =
      r.shardGroup > device.gpusPerNode ? device.interLatency : device.intraLatency;
  // The units of the compiled program, padded to a multiple of the group as
  // llamac-plan-fsdp pads them; without them, one per layer plus the embedding and output.
  double units = double(info.numLayers + 2), P = N, largest = double(info.numLayerParams);
  if (!o.unitElements.empty()) {
    units = double(o.unitElements.size());
    P = largest = 0;
    for (int64_t e : o.unitElements) {
      double padded = std::ceil(double(e) / G) * G;
      P += padded;
      largest = std::max(largest, padded);
    }
  }
  r.units = int64_t(units);
  r.gatheredElements = P;
  r.largestUnitElements = largest;
  r.allGatherBytes = 2 * (G - 1) / G * 2 * P;
  r.reduceScatterBytes = (G - 1) / G * 4 * P;
  double groupSeconds =
      2 * ringSeconds(2 * P, r.shardGroup, groupBandwidth, 0) +
      ringSeconds(4 * P, r.shardGroup, groupBandwidth, 0) +
      3 * units * double(std::max<int64_t>(r.shardGroup - 1, 0)) * groupLatency;
  double R = double(r.replicas);
  r.allReduceBytes = R > 1 ? 2 * (R - 1) / R * 4 * P / G : 0;
  double replicaSeconds =
      R > 1 ? 2 * ringSeconds(4 * P / G, r.replicas, device.interBandwidth, 0) +
                  2 * units * (R - 1) * device.interLatency
            : 0;
  r.commSeconds = groupSeconds + replicaSeconds;
  // Overlap: every unit's collectives run beside another unit's compute, except the first
  // gather of the forward and the last reductions of the backward; beyond that only the
  // part of communication longer than compute shows.
  double perUnit = r.commSeconds / units;
  r.exposedCommSeconds = std::max(0.0, r.commSeconds - r.computeSeconds) + perUnit;
  r.stepSeconds = r.computeSeconds + r.exposedCommSeconds;
  r.tokensPerSecondPerDevice = double(o.tokensPerDevice) / r.stepSeconds;
  r.mfu = r.tokensPerSecondPerDevice * info.trainingFlopsPerToken() / device.peakFlops;
  if (o.totalTokens > 0)
    r.gpuHours = o.totalTokens / r.tokensPerSecondPerDevice / 3600.0;

  // Memory per device: sharded state (16 bytes per parameter over the group), the gathered
  // bf16 units (the computing one, the prefetched ones, and the gradient of one in fp32), and
  // the activations the backward keeps at this many tokens.
  r.unshardedStateBytes = 16 * N;
  r.paramBytes = (2 + 4) * P / G; // bf16 compute copy + fp32 master
  r.gradBytes = 2 * P / G;
  r.optimizerBytes = 8 * P / G;
  r.gatheredBytes = (1 + o.prefetch) * 2 * largest + 4 * largest;
  double kept = 0;
  for (const ModelInfo::Remat &m : info.remat)
    if (m.policy == o.remat)
      kept = double(m.total);
  if (info.tokens() > 0)
    kept *= double(o.tokensPerDevice) / info.tokens();
  r.activationBytes = kept;
  r.totalBytes = r.paramBytes + r.gradBytes + r.optimizerBytes + r.gatheredBytes +
                 r.activationBytes;
  return true;
}

void llamac::printPlan(const ModelInfo &info, const DeviceSpec &d, const PlanOptions &o,
                       const PlanResult &r, llvm::raw_ostream &os) {
  auto gib = [](double b) { return b / double(1ull << 30); };
  os << "plan: @" << info.name << " on " << o.devices << " x " << d.name << ", " << o.strategy
     << " (shard over " << r.shardGroup << ", " << r.replicas << " replicas), "
     << o.tokensPerDevice << " tokens per device per step at seq " << info.seq << "\n";
  os << llvm::format("step time: %.3f s (compute %.3f s, communication %.3f s of which "
                     "exposed %.3f s)\n",
                     r.stepSeconds, r.computeSeconds, r.commSeconds, r.exposedCommSeconds);
  os << llvm::format("throughput: %.1f tokens/s per device, MFU %.1f%%\n",
                     r.tokensPerSecondPerDevice, 100 * r.mfu);
  if (r.gpuHours > 0)
    os << llvm::format("device-hours for %.3g tokens: %.0f\n", o.totalTokens, r.gpuHours);
  os << llvm::format("units: %lld gathered and reduce-scattered per step, %.4g elements "
                     "padded, the largest %.4g%s\n",
                     (long long)r.units, r.gatheredElements, r.largestUnitElements,
                     o.unitElements.empty() ? " (one per layer, embedding and output)"
                                            : " (llamac-plan-fsdp's units)");
  os << llvm::format("communication per device per step: all-gather %.2f GiB, reduce-scatter "
                     "%.2f GiB, all-reduce %.2f GiB\n",
                     gib(r.allGatherBytes), gib(r.reduceScatterBytes), gib(r.allReduceBytes));
  os << llvm::format("memory per device: parameters %.2f GiB, gradients %.2f GiB, optimizer "
                     "%.2f GiB, gathered units %.2f GiB, activations (remat %s) %.2f GiB; "
                     "total %.2f GiB of %.0f GB\n",
                     gib(r.paramBytes), gib(r.gradBytes), gib(r.optimizerBytes),
                     gib(r.gatheredBytes), o.remat.c_str(), gib(r.activationBytes),
                     gib(r.totalBytes), d.memoryBytes / 1e9);
  if (r.totalBytes > d.memoryBytes)
    os << llvm::format("warning: does not fit: %.2f GiB per device exceeds the %.0f GB of a %s "
                       "(shard over more devices, --strategy fsdp, or --remat full)\n",
                       gib(r.totalBytes), d.memoryBytes / 1e9, d.name.c_str());
  os << llvm::format("model state unsharded: %.2f GiB (16 bytes per parameter); sharded "
                     "over %lld: %.2f GiB per device\n",
                     gib(r.unshardedStateBytes), (long long)r.shardGroup,
                     gib(r.unshardedStateBytes) / double(r.shardGroup));
}
