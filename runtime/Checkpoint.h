//===- Checkpoint.h - atomic, checksummed training checkpoints ------------*- C++ -*-===//
//
// A checkpoint directory holds one sub-directory per saved step and a pointer file:
//
//   <root>/step-<N>/tensors.safetensors   parameters and optimizer state (Safetensors.h)
//   <root>/step-<N>/manifest.pb           ManifestFile (runtime/proto/checkpoint.proto):
//                                         model name, configuration, step, data position,
//                                         seed, schedule state, each tensor's name, dtype,
//                                         shape and CRC32C, and the tensors file's CRC32C
//   <root>/latest                         "step-<N>": the last checkpoint saved
//   <root>/.lock                          held (flock) while a save runs
//
// A save writes step-<N>.tmp/, syncs it, renames it to step-<N> (the commit point), syncs
// the root, then replaces `latest` atomically; a crash at any point leaves the previous
// checkpoint and `latest` usable. A load verifies every checksum before handing anything
// back, and names the file and the fault when it rejects a checkpoint; loadLatestValid falls
// back to the newest older checkpoint that verifies, and says so.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_CHECKPOINT_H
#define LLAMAC_RUNTIME_CHECKPOINT_H

#include "runtime/Safetensors.h"
#include "runtime/Tensor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace llamac {

/// What a training run needs besides its tensors to resume exactly.
struct CheckpointState {
  std::string modelName;
  /// The model's hyper-parameters (or anything else worth recording), as text.
  std::map<std::string, std::string> config;
  /// Optimizer steps completed; the resumed run executes step `step` next.
  int64_t step = 0;
  /// Tokens consumed by the completed steps.
  uint64_t tokensConsumed = 0;
  /// The seed of the data order (and of any other randomness).
  uint64_t seed = 0;
  /// Learning-rate schedule state, if the schedule has any.
  std::map<std::string, double> schedule;
  /// Other resumable state (loss scale, skipped batches, ...).
  std::map<std::string, std::string> extra;
};

struct CheckpointSaveOptions {
  /// After the save, keep the `keepLast` newest checkpoints up to the one saved and delete
  /// older ones; 0 keeps everything. Checkpoints of later steps (left by a run that was
  /// resumed from an earlier step) are never deleted.
  unsigned keepLast = 0;
  /// Called at each stage of a save: "tensors-written", "manifest-written", "before-rename",
  /// "renamed", "latest-updated". Tests stop the process there to simulate a crash.
  std::function<void(const std::string &stage)> onStage;
};

struct CheckpointSaveResult {
  /// The committed directory, <root>/step-<N>.
  std::string directory;
  /// Steps deleted by pruning.
  std::vector<int64_t> pruned;
  /// Problems that did not stop the save (a checkpoint that could not be pruned).
  std::string warning;
};

struct LoadedCheckpoint {
  CheckpointState state;
  /// The tensors, in file order.
  TensorFile tensors;
  /// The directory loaded, <root>/step-<N>.
  std::string directory;
  /// Seconds since the epoch when it was saved.
  double wallTime = 0;
  /// loadLatestValid: one message per checkpoint rejected before this one was found; empty
  /// when the checkpoint `latest` names was loaded.
  std::vector<std::string> rejected;
  /// loadLatestValid: a sentence saying which checkpoint was loaded and why, when it is not
  /// the one `latest` names.
  std::string note;
};

/// "step-<N>".
std::string checkpointDirName(int64_t step);

/// Saves a checkpoint of `tensors` (names unique, as safetensors requires) and `state` under
/// `root` (created if needed). A checkpoint already saved for the same step is replaced. One
/// process saves at a time: a save while another holds <root>/.lock fails.
bool saveCheckpoint(const std::string &root, const CheckpointState &state,
                    const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                    const CheckpointSaveOptions &options, CheckpointSaveResult *result,
                    std::string *error);

/// Loads and verifies the checkpoint of `step`, or the one `latest` names when `step` is -1.
/// Fails, naming the file and the fault, when anything is missing, truncated or corrupt.
bool loadCheckpoint(const std::string &root, int64_t step, LoadedCheckpoint &out,
                    std::string *error);

/// Loads the checkpoint `latest` names if it verifies, otherwise the newest older one that
/// does (all of them, newest first, when `latest` is missing or unreadable), recording each
/// rejection in out.rejected and out.note. Fails when no checkpoint verifies; the message
/// lists every rejection.
bool loadLatestValid(const std::string &root, LoadedCheckpoint &out, std::string *error);

/// Verifies the checkpoint directory `dir` (manifest, sizes, every checksum) without
/// decoding its tensors.
bool verifyCheckpoint(const std::string &dir, std::string *error);

/// The steps of the committed checkpoints under `root` (directories named step-<N>),
/// ascending. Temporary and replaced directories are not listed.
std::vector<int64_t> listCheckpoints(const std::string &root);

/// The step `latest` names; false with a message when it is missing or malformed.
bool readLatestStep(const std::string &root, int64_t &step, std::string *error);

/// Deletes all but the `keepLast` newest checkpoints with a step up to `upToStep` (all
/// checkpoints when upToStep is -1). Deleted steps are appended to *pruned.
bool pruneCheckpoints(const std::string &root, unsigned keepLast, int64_t upToStep,
                      std::vector<int64_t> *pruned, std::string *error);

} // namespace llamac

#endif
