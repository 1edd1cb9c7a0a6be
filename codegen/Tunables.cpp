//===- Tunables.cpp - every kernel kind's tunable parameters, in one place ----------===//
#include "codegen/Tunables.h"

#include <algorithm>

using namespace llamac::kir;

const std::vector<Tunable> &llamac::kir::tunablesOf(KernelKind kind, const std::string &target) {
  static const std::vector<Tunable> none;
  if (target == "cuda") {
    // Flash attention's tiles (FlashAttention.cuh): block_q query rows per thread block
    // (16 per warp), block_k keys per step; shared memory bounds the product with D.
    static const std::vector<Tunable> cudaAttention = {
        {"block_q", {64, 128}, {64, 128}},
        {"block_k", {64, 32}, {64, 32}},
    };
    // cuBLASLt's heuristic candidates for the shape, by rank (0: its first choice).
    static const std::vector<Tunable> cudaGemm = {
        {"algo", {0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 3}},
    };
    switch (kind) {
    case KernelKind::FlashAttention:
    case KernelKind::FlashAttentionGrad:
      return cudaAttention;
    case KernelKind::GemmNT:
    case KernelKind::GemmNN:
    case KernelKind::GemmTN:
      return cudaGemm;
    default:
      return none;
    }
  }
  if (target != "cpu")
    return none;
  // Flash attention's query and key tiles: one score tile of block_q x block_k per task
  // lives in L1/L2; larger tiles amortise the per-tile BLIS calls, smaller ones split the
  // work more finely over threads and skip more of the causal mask.
  static const std::vector<Tunable> attention = {
      {"block_q", {64, 32, 128, 256}, {64, 128}},
      {"block_k", {64, 32, 128, 256}, {64, 128}},
  };
  // int8 GEMM: rows of the weight per parallel task (load balance against task overhead).
  static const std::vector<Tunable> gemmQ8 = {
      {"rows_per_task", {32, 8, 16, 64, 128}, {16, 32}},
  };
  // f32 GEMMs: impl 0 is BLIS, impl 1 llamac's own (runtime/cpu/Gemm.cpp: packed panels,
  // 6 x 16 FMA micro-kernel; unpacked for M <= 4); kc, its K block (own GEMM only).
  static const std::vector<Tunable> gemm = {
      {"impl", {0, 1}, {0, 1}},
      {"kc", {384, 256, 512}, {384}, "impl", 1},
  };
  switch (kind) {
  case KernelKind::FlashAttention:
  case KernelKind::FlashAttentionGrad:
    return attention;
  case KernelKind::GemmNTQ8:
    return gemmQ8;
  case KernelKind::GemmNT:
  case KernelKind::GemmNN:
  case KernelKind::GemmTN:
    return gemm;
  default:
    return none;
  }
}

std::vector<std::vector<std::pair<std::string, int64_t>>>
llamac::kir::variantsOf(const Launch &launch, const std::string &target, bool quick) {
  std::vector<std::vector<std::pair<std::string, int64_t>>> out;
  const std::vector<Tunable> &tunables = tunablesOf(launch.kind, target);
  if (tunables.empty())
    return out;
  // The launch's own values first: the default every variant is checked against.
  std::vector<std::pair<std::string, int64_t>> current;
  for (const Tunable &t : tunables) {
    bool has = std::any_of(launch.ints.begin(), launch.ints.end(),
                           [&](const auto &kv) { return kv.first == t.name; });
    current.push_back({t.name, has ? launch.intAttr(t.name) : t.values.front()});
  }
  out.push_back(current);
  // The product of the value lists, odometer order.
  std::vector<size_t> index(tunables.size(), 0);
  while (true) {
    std::vector<std::pair<std::string, int64_t>> v;
    for (size_t i = 0; i < tunables.size(); ++i) {
      const Tunable &t = tunables[i];
      const auto &values = quick ? t.quick : t.values;
      int64_t value = values[index[i]];
      // A tunable that does not apply to this variant stays at its default.
      if (!t.onlyIf.empty())
        for (const auto &[name, other] : v)
          if (name == t.onlyIf && other != t.onlyIfValue)
            value = t.values.front();
      v.push_back({t.name, value});
    }
    if (std::find(out.begin(), out.end(), v) == out.end())
      out.push_back(v);
    size_t i = 0;
    for (; i < tunables.size(); ++i) {
      const auto &values = quick ? tunables[i].quick : tunables[i].values;
      if (++index[i] < values.size())
        break;
      index[i] = 0;
    }
    if (i == tunables.size())
      break;
  }
  return out;
}

std::string llamac::kir::shapeKey(const Launch &launch, const std::string &target) {
  const std::vector<Tunable> &tunables = tunablesOf(launch.kind, target);
  std::string key;
  for (const auto &[name, value] : launch.ints) {
    if (std::any_of(tunables.begin(), tunables.end(),
                    [&](const Tunable &t) { return t.name == name; }))
      continue;
    key += (key.empty() ? "" : ",") + name + "=" + std::to_string(value);
  }
  // A bf16 GEMM and an f32 one of the same shape are different kernels (mixed precision).
  auto isBf16 = [](const BufferRef &b) { return b.type == ElemType::BF16; };
  if (std::any_of(launch.inputs.begin(), launch.inputs.end(), isBf16) ||
      std::any_of(launch.outputs.begin(), launch.outputs.end(), isBf16))
    key += ",bf16";
  return key;
}

void llamac::kir::applyChoice(Launch &launch,
                              const std::vector<std::pair<std::string, int64_t>> &choice) {
  for (const auto &[name, value] : choice) {
    bool found = false;
    for (auto &[k, v] : launch.ints)
      if (k == name) {
        v = value;
        found = true;
      }
    if (!found)
      launch.ints.push_back({name, value});
  }
}

void llamac::kir::applyTargetDefaults(Program &program, const std::string &target) {
  for (Function &f : program.functions)
    for (Launch &l : f.launches)
      for (const Tunable &t : tunablesOf(l.kind, target)) {
        bool legal = false, present = false;
        for (auto &[name, value] : l.ints)
          if (name == t.name) {
            present = true;
            legal = std::find(t.values.begin(), t.values.end(), value) != t.values.end();
          }
        if (!present || !legal)
          applyChoice(l, {{t.name, t.values.front()}});
      }
}
