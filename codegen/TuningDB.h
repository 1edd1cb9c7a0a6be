//===- TuningDB.h - the tuning database of `llamac tune` ------------------*- C++ -*-===//
//
// What `llamac tune` measured and `llamac compile --tuning-db` applies: for each device, the
// fastest variant (the values of a kernel's tunables, codegen/Tunables.h) of each kernel
// kind, shape and element type, with the winner's and the default's median times.
//
// A device is a DeviceKey: a description of the hardware (CPU model, ISA extensions, thread
// count; or GPU name and compute capability) and of the software that runs the kernels
// (BLIS's version, or the CUDA runtime's and cuBLASLt's, and a version of llamac's own
// kernels). Timings say nothing about another device, so lookups use only the entries of an
// exactly equal key; one file can hold several devices (a shared home directory, a file
// checked into a repository), and tuning on one device keeps the others' entries. A CPU is
// known where the compiler runs; a GPU is not, so `llamac compile --target cuda` picks one
// of the file's GPUs (Database::selectGpu).
//
// The file is Protobuf text format (runtime/proto/tuning.proto), readable and editable by
// hand, written sorted so that it diffs well:
//
//   # llamac tuning database (runtime/proto/tuning.proto): written by `llamac tune`.
//   version: 1
//   device {
//     description: "cpu: AMD EPYC 7B13; isa: avx avx2 fma; threads: 2"
//     libraries: "blis 0.9.0-1 (libblis4-openmp); llamac cpu kernels 1"
//     entry {
//       kernel: "flash_attention"
//       shape: "B=8,T=256,S=256,H=6,Hkv=6,D=48,causal=1,window=0"
//       dtype: "f32"
//       choice {
//         name: "block_q"
//         value: 128
//       }
//       best_seconds: 0.0123
//       default_seconds: 0.0151
//       variants: 12
//     }
//   }
//
// Loading validates everything (version, UTF-8, no duplicate devices, entries or choices,
// finite non-negative times) and reports failures with the file named, never crashing, so
// that a damaged or foreign file is refused rather than half-applied. An empty file is an
// error too: it is not a tuning database (it lacks `version: 1`) and is more likely a write
// that failed than a deliberate choice; loadIfExists() serves the "no database yet" case.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_CODEGEN_TUNINGDB_H
#define LLAMAC_CODEGEN_TUNINGDB_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace llamac::tune {

/// Identifies where timings were taken; see currentCpuDevice().
struct DeviceKey {
  /// The hardware, e.g. "cpu: AMD EPYC 7B13; isa: avx avx2 fma; threads: 2".
  std::string description;
  /// The software the kernels run on, e.g. "blis 0.9.0-1 (libblis4-openmp); llamac cpu
  /// kernels 1".
  std::string libraries;

  /// "<description> [<libraries>]", for messages.
  std::string str() const;

  bool operator==(const DeviceKey &o) const {
    return description == o.description && libraries == o.libraries;
  }
  bool operator!=(const DeviceKey &o) const { return !(*this == o); }
  bool operator<(const DeviceKey &o) const {
    return std::tie(description, libraries) < std::tie(o.description, o.libraries);
  }
};

/// Bumped whenever llamac's CPU kernels change in a way that can move a tuning result, so
/// that old results stop applying.
inline constexpr const char *kCpuKernelsVersion = "llamac cpu kernels 1";

/// The key of this machine's CPU running `threads` threads (as --threads; 0, the OpenMP
/// default, is recorded as the processor count that default amounts to).
DeviceKey currentCpuDevice(int threads);

/// The key currentCpuDevice() builds from the text of /proc/cpuinfo (exposed for tests):
/// "cpu: <first model name, spaces collapsed>; isa: <which of avx avx2 fma avx512f avx512bw
/// avx512_vnni avx_vnni amx_tile the first flags line lists, in that order, or none>;
/// threads: <threads>". An unknown model reads "unknown".
DeviceKey cpuDeviceFromCpuinfo(const std::string &cpuinfo, int threads);

/// The BLIS this build links and kCpuKernelsVersion: "blis <version>; llamac cpu kernels 1".
std::string cpuLibraries();

/// Bumped whenever llamac's CUDA kernels (runtime/cuda) change in a way that can move a
/// tuning result, so that old results stop applying.
inline constexpr const char *kCudaKernelsVersion = "llamac cuda kernels 1";

/// The key of a GPU, from what the benchmark of `llamac tune --target cuda` reads on it:
/// description "gpu: <name, blanks collapsed>; sm_<major><minor>" (cudaDeviceProp's name and
/// compute capability), libraries cudaLibraries(runtimeVersion, cublasLtVersion).
DeviceKey cudaDevice(const std::string &name, int major, int minor, int runtimeVersion,
                     uint64_t cublasLtVersion);

/// "cuda runtime <major>.<minor>; cublasLt <cublasLtVersion>; llamac cuda kernels 1", from
/// cudaRuntimeGetVersion's number (1000 major + 10 minor: 12040 is 12.4) and
/// cublasLtGetVersion's (10000 major + 100 minor + patch: 120402).
std::string cudaLibraries(int runtimeVersion, uint64_t cublasLtVersion);

/// cudaLibraries() of the CUDA toolkit whose headers are in `includeDir`: CUDART_VERSION of
/// cuda_runtime_api.h and CUBLAS_VER_MAJOR, _MINOR and _PATCH of cublas_api.h, which is what
/// a program built against the toolkit reports when it runs with the toolkit's libraries.
/// `llamac compile --target cuda` cannot ask the GPU; it compares these with the tuned
/// entries' libraries. "" when a header or a version in it is missing.
std::string cudaToolkitLibraries(const std::string &includeDir);

/// Whether `device` is a CPU key ("cpu: ...", for --target cpu) or a GPU key ("gpu: ...",
/// for --target cuda).
bool isCpuDevice(const DeviceKey &device);
bool isGpuDevice(const DeviceKey &device);

/// A tunable and the value chosen for it.
struct Choice {
  std::string name;
  int64_t value = 0;

  bool operator==(const Choice &o) const { return name == o.name && value == o.value; }
  bool operator!=(const Choice &o) const { return !(*this == o); }
};

/// The winning variant of one kernel kind, shape and element type on one device.
struct Entry {
  /// kir::kernelName of the kind, e.g. "flash_attention".
  std::string kernel;
  /// The canonical key of the non-tunable attributes (kir::shapeKey).
  std::string shape;
  /// The element type, e.g. "f32". CUDA entries name the precision of the products
  /// (`--precision`: "bf16", "tf32" or "f32"), which selects other kernels: cuBLASLt's
  /// candidates (what `algo` indexes) and the attention forward's tensor-core variant.
  std::string dtype;
  /// The winner, in the tuner's order of tunables; names are unique.
  std::vector<Choice> choices;
  /// Median seconds of the winner and of the default variant.
  double bestSeconds = 0;
  double defaultSeconds = 0;
  /// How many variants were timed.
  int variants = 0;

  /// The value chosen for tunable `name`, if the entry has one.
  std::optional<int64_t> value(const std::string &name) const;

  bool operator==(const Entry &o) const;
  bool operator!=(const Entry &o) const { return !(*this == o); }
};

/// Tuning results of any number of devices, keyed by (device, kernel, shape, dtype). Not
/// thread-safe (lookup() records which notes it has given).
class Database {
public:
  /// The `version` this build reads and writes.
  static constexpr int kVersion = 1;

  /// Replaces the contents with the text-format database at `path`. On failure (a missing,
  /// unreadable, malformed, empty or invalid file, or one of another version) returns false
  /// with `error` naming the file and the fault (parse errors as "<path>:<line>:<column>:
  /// <message>") and leaves the database empty.
  bool load(const std::string &path, std::string *error);

  /// As load(), but a file that does not exist yields an empty database and true (the first
  /// `llamac tune` on a machine). path() is `path` either way, so that save() goes there.
  bool loadIfExists(const std::string &path, std::string *error);

  /// Writes the database to `path` in text format, atomically (a reader sees the old file or
  /// the whole new one), devices and entries sorted. The directory must exist. Fails, with
  /// the file named, when it cannot be written or an entry is invalid (as load() would
  /// reject it: empty kernel or dtype, duplicate choice, negative or non-finite time...).
  bool save(const std::string &path, std::string *error) const;

  /// The entry for (device, kernel, shape, dtype), or null. When it is null and the database
  /// holds entries only for other devices (or for this CPU with other libraries), `note`
  /// (when given) is set, the first time a lookup meets that situation, to "tuning database
  /// <path> has entries for <those devices>, not for <device>; ignoring them"; later lookups
  /// leave it untouched, so that a compiler can print every note it gets.
  const Entry *lookup(const DeviceKey &device, const std::string &kernel,
                      const std::string &shape, const std::string &dtype,
                      std::string *note = nullptr) const;

  /// Picks the GPU whose entries `llamac compile --target cuda` applies: the compiler does
  /// not run on the GPU, so it is named by --tuning-device (`filter`, a substring of a GPU
  /// key's description; "" for none) or, without one, is the only GPU in the database.
  /// `libraries` is what the program will run with (cudaToolkitLibraries()).
  ///
  /// On success sets `device` to the GPU's description with `libraries` (lookup() then
  /// notes entries of other libraries and ignores them) and `note` to "tuning database
  /// <path>: using the entries for <description>" with why it was chosen. When `libraries`
  /// is "" (unknown) it takes the libraries of the GPU's entries, which must then be of one
  /// set. When the database holds no GPU entries and `filter` is "", succeeds with `device`
  /// cleared (nothing applies) and a note saying so. Fails, with `error` listing the GPUs,
  /// when `filter` matches none or several descriptions, or when it is "" and the database
  /// has several GPUs. CPU keys never match: they are for --target cpu.
  bool selectGpu(const std::string &filter, const std::string &libraries, DeviceKey *device,
                 std::string *note, std::string *error) const;

  /// Adds `entry` for `device`, replacing one with the same kernel, shape and dtype.
  void put(const DeviceKey &device, Entry entry);

  /// Removes every entry.
  void clear();

  /// The number of entries over all devices.
  size_t size() const;
  bool empty() const { return size() == 0; }

  /// The devices that have entries, sorted.
  std::vector<DeviceKey> devices() const;
  /// The entries of `device`, sorted by (kernel, shape, dtype).
  std::vector<const Entry *> entries(const DeviceKey &device) const;

  /// The file last loaded (or passed to loadIfExists), or "".
  const std::string &path() const { return path_; }

private:
  using EntryKey = std::tuple<std::string, std::string, std::string>; // kernel, shape, dtype
  std::map<DeviceKey, std::map<EntryKey, Entry>> devices_;
  std::string path_;
  /// The devices lookup() has already given a note for.
  mutable std::set<DeviceKey> noted_;
};

} // namespace llamac::tune

#endif
