//===- Tunables.h - every kernel kind's tunable parameters, in one place --*- C++ -*-===//
//
// A tunable is an integer attribute of a launch (codegen/KernelIR.h) that changes how a
// kernel runs but not what it computes: tile sizes, work-splitting granularity. The list
// below is the only place that says which attributes of which kernel kind are tunable and
// what values are legal; the emitters read the values from the launch, `llamac tune`
// searches them, and `llamac compile --tuning-db` sets them from the tuning database.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_TUNABLES_H
#define LLAMAC_CODEGEN_TUNABLES_H

#include "codegen/KernelIR.h"

#include <cstdint>
#include <string>
#include <vector>

namespace llamac::kir {

struct Tunable {
  /// The launch attribute it sets.
  std::string name;
  /// Legal values, the default first. The default a launch carries (from the IR, e.g. a
  /// fused op's block sizes) takes precedence over the first value here.
  std::vector<int64_t> values;
  /// The reduced search space of `llamac tune --space quick`.
  std::vector<int64_t> quick;
  /// When set, the tunable matters only while the tunable `onlyIf` (listed before it) has
  /// the value `onlyIfValue`; other variants keep it at its default and are not repeated.
  std::string onlyIf = {};
  int64_t onlyIfValue = 0;
};

/// The tunables of `kind` for `target` ("cpu" or "cuda"); empty when it has none.
const std::vector<Tunable> &tunablesOf(KernelKind kind, const std::string &target);

/// Every combination of the tunables' values (the whole space or the quick one), each as
/// (name, value) pairs in tunablesOf order; the launch's current values first.
std::vector<std::vector<std::pair<std::string, int64_t>>>
variantsOf(const Launch &launch, const std::string &target, bool quick);

/// What identifies a kernel for tuning besides its kind and element type: every integer
/// attribute that is not tunable, "name=value" joined by commas, in the launch's order.
std::string shapeKey(const Launch &launch, const std::string &target);

/// Sets `launch`'s attributes to `choice` (names not in the launch are added).
void applyChoice(Launch &launch, const std::vector<std::pair<std::string, int64_t>> &choice);

/// Makes every tunable attribute of `program`'s launches legal for `target`: a value the
/// target's list does not hold (a CPU tile size in a CUDA program) or a missing one becomes
/// the target's default.
void applyTargetDefaults(Program &program, const std::string &target);

} // namespace llamac::kir

#endif
