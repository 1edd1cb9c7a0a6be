//===- Safetensors.h - reading and writing safetensors files --------------*- C++ -*-===//
//
// Hugging Face safetensors files: an 8-byte little-endian header size N, N bytes of JSON
// naming each tensor's dtype, shape and byte range, then the tensors' bytes. The reader
// validates the whole file strictly (it is fed downloaded checkpoints) and the writer
// replaces files atomically. No LLVM/MLIR here: generated executables link this library.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_SAFETENSORS_H
#define LLAMAC_RUNTIME_SAFETENSORS_H

#include "runtime/Tensor.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace llamac {

struct TensorFile {
  /// In file order (sorted by data offset).
  std::vector<std::pair<std::string, Tensor>> tensors;
  /// The "__metadata__" entry.
  std::map<std::string, std::string> metadata;

  /// The tensor called `name`, or null.
  const Tensor *find(const std::string &name) const;
};

/// Reads a whole safetensors file. On failure returns false, leaves `out` untouched and sets
/// *error (when non-null) to a message naming the file, the problem and the tensor at fault.
bool readSafetensors(const std::string &path, TensorFile &out, std::string *error);

/// Writes `tensors` in the given order, each encoded in its own dtype, little-endian. The file
/// is written to a temporary in the same directory, synced and renamed over `path`, so on
/// failure any existing file at `path` is untouched; false is returned with *error set.
bool writeSafetensors(const std::string &path,
                      const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                      const std::map<std::string, std::string> &metadata, std::string *error);

} // namespace llamac

#endif
