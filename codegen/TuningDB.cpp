//===- TuningDB.cpp - the tuning database of `llamac tune` ---------------------------===//
//
// Text-format Protobuf I/O for tuning.proto, validation of what is read, the lookup by
// device, the CPU's device key (from /proc/cpuinfo and the BLIS version configured in
// codegen/CMakeLists.txt), and the GPU's (from what the CUDA benchmark reports, or, for the
// compiler, from the CUDA toolkit's headers).
//
//===----------------------------------------------------------------------------------===//
#include "codegen/TuningDB.h"

#include "runtime/FileUtil.h"
#include "runtime/proto/tuning.pb.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <sched.h>
#include <sys/stat.h>

#ifndef LLAMAC_BLIS_VERSION
#define LLAMAC_BLIS_VERSION "unknown"
#endif

namespace llamac::tune {
namespace {

namespace pb = ::llamac::tuning;

/// Larger files are refused unread: a real database holds a few hundred entries.
constexpr uint64_t kMaxFileBytes = 64ull << 20;

/// The first lines of every saved file; text format skips them as comments.
constexpr const char *kFileHeader =
    "# llamac tuning database (runtime/proto/tuning.proto): written by `llamac tune`, read by\n"
    "# `llamac compile --tuning-db`. Hand edits are kept; comments are not.\n";

bool setError(std::string *error, std::string message) {
  if (error)
    *error = std::move(message);
  return false;
}

std::string quoted(const std::string &s) { return "\"" + s + "\""; }

/// Keeps the first error the text parser reports (later ones are usually consequences of
/// it), with its position made one-based as editors count.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string &message) override {
    if (!message_.empty())
      return;
    message_ = std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string &) override {}
  const std::string &message() const { return message_; }

private:
  std::string message_;
};

/// Why `entry` cannot be stored (load() rejects the file, save() refuses to write it), or "".
/// The checks keep what a hand edit can break from reaching the compiler: a choice named twice
/// has no single value, and a time that is negative or not finite is no measurement.
std::string checkEntry(const Entry &entry) {
  for (const std::string *s : {&entry.kernel, &entry.shape, &entry.dtype})
    if (!isValidUtf8(*s))
      return "a kernel, shape or dtype is not valid UTF-8";
  if (entry.kernel.empty())
    return "an entry has no kernel";
  std::string where = "entry " + quoted(entry.kernel) + " shape " + quoted(entry.shape) +
                      " dtype " + quoted(entry.dtype);
  if (entry.dtype.empty())
    return where + " has no dtype";
  for (size_t i = 0; i < entry.choices.size(); ++i) {
    const std::string &name = entry.choices[i].name;
    if (!isValidUtf8(name))
      return where + ": a choice name is not valid UTF-8";
    if (name.empty())
      return where + " has a choice without a name";
    for (size_t j = 0; j < i; ++j)
      if (entry.choices[j].name == name)
        return where + " chooses " + quoted(name) + " twice";
  }
  auto badTime = [](double t) { return !std::isfinite(t) || t < 0; };
  if (badTime(entry.bestSeconds) || badTime(entry.defaultSeconds))
    return where + " has a negative or non-finite time";
  if (entry.variants < 0)
    return where + " has a negative variant count";
  return "";
}

std::string checkDevice(const DeviceKey &device) {
  if (!isValidUtf8(device.description) || !isValidUtf8(device.libraries))
    return "a device description or libraries string is not valid UTF-8";
  if (device.description.empty())
    return "a device has no description";
  return "";
}

/// The model name with runs of blanks collapsed: Intel pads some names with spaces, and a
/// key should not depend on how many.
std::string collapseSpaces(const std::string &s) {
  std::string out;
  for (char c : s) {
    bool blank = c == ' ' || c == '\t';
    if (blank && (out.empty() || out.back() == ' '))
      continue;
    out += blank ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

/// The value of the first "<key> : value" line of /proc/cpuinfo text, if any.
std::optional<std::string> cpuinfoField(const std::string &cpuinfo, const std::string &key) {
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    if (collapseSpaces(line.substr(0, colon)) == key)
      return collapseSpaces(line.substr(colon + 1));
  }
  return std::nullopt;
}

/// What OpenMP's default thread count amounts to without linking OpenMP here: the first
/// number of OMP_NUM_THREADS, else the processors this process may run on (libgomp's rule).
int defaultThreads() {
  if (const char *env = std::getenv("OMP_NUM_THREADS")) {
    char *end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && n > 0 && n < (1 << 20))
      return static_cast<int>(n);
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  return std::max(1u, std::thread::hardware_concurrency());
}

} // namespace

//===----------------------------------------------------------------------------------===//
// Device keys
//===----------------------------------------------------------------------------------===//

std::string DeviceKey::str() const { return description + " [" + libraries + "]"; }

DeviceKey cpuDeviceFromCpuinfo(const std::string &cpuinfo, int threads) {
  std::string model = cpuinfoField(cpuinfo, "model name").value_or("");
  if (model.empty())
    model = "unknown";
  // Only the extensions the kernels or BLIS dispatch on: listing every flag would make keys
  // differ between machines (and kernels, microcode) that run the same code.
  static const char *const kIsa[] = {"avx",      "avx2",        "fma",      "avx512f",
                                     "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile"};
  std::set<std::string> flags;
  {
    std::istringstream words(cpuinfoField(cpuinfo, "flags").value_or(""));
    std::string word;
    while (words >> word)
      flags.insert(word);
  }
  std::string isa;
  for (const char *name : kIsa)
    if (flags.count(name))
      isa += (isa.empty() ? "" : " ") + std::string(name);
  if (isa.empty())
    isa = "none";
  DeviceKey key;
  key.description = "cpu: " + model + "; isa: " + isa + "; threads: " + std::to_string(threads);
  key.libraries = cpuLibraries();
  return key;
}

std::string cpuLibraries() {
  return std::string("blis ") + LLAMAC_BLIS_VERSION + "; " + kCpuKernelsVersion;
}

DeviceKey cudaDevice(const std::string &name, int major, int minor, int runtimeVersion,
                     uint64_t cublasLtVersion) {
  std::string model = collapseSpaces(name);
  DeviceKey key;
  key.description = "gpu: " + (model.empty() ? std::string("unknown") : model) + "; sm_" +
                    std::to_string(major) + std::to_string(minor);
  key.libraries = cudaLibraries(runtimeVersion, cublasLtVersion);
  return key;
}

std::string cudaLibraries(int runtimeVersion, uint64_t cublasLtVersion) {
  return "cuda runtime " + std::to_string(runtimeVersion / 1000) + "." +
         std::to_string(runtimeVersion % 1000 / 10) + "; cublasLt " +
         std::to_string(cublasLtVersion) + "; " + kCudaKernelsVersion;
}

std::string cudaToolkitLibraries(const std::string &includeDir) {
  // The integer values of the `#define NAME <digits>` lines of a header.
  auto defines = [&](const std::string &header) {
    std::map<std::string, long long> values;
    std::ifstream in(includeDir + "/" + header);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string directive, name, value;
      if (!(words >> directive >> name >> value) || directive != "#define" ||
          value.find_first_not_of("0123456789") != std::string::npos || value.size() > 12)
        continue;
      values.emplace(name, std::stoll(value));
    }
    return values;
  };
  auto runtime = defines("cuda_runtime_api.h");
  auto blas = defines("cublas_api.h");
  if (!runtime.count("CUDART_VERSION") || !blas.count("CUBLAS_VER_MAJOR") ||
      !blas.count("CUBLAS_VER_MINOR") || !blas.count("CUBLAS_VER_PATCH"))
    return "";
  // cublasLtGetVersion() is CUBLAS_VERSION: 10000 major + 100 minor + patch.
  uint64_t lt = uint64_t(blas["CUBLAS_VER_MAJOR"] * 10000 + blas["CUBLAS_VER_MINOR"] * 100 +
                         blas["CUBLAS_VER_PATCH"]);
  return cudaLibraries(int(runtime["CUDART_VERSION"]), lt);
}

bool isCpuDevice(const DeviceKey &device) { return device.description.rfind("cpu: ", 0) == 0; }
bool isGpuDevice(const DeviceKey &device) { return device.description.rfind("gpu: ", 0) == 0; }

DeviceKey currentCpuDevice(int threads) {
  // Read as a stream: /proc files report a size of 0, so readFileBytes would read nothing. A
  // missing /proc (some containers) leaves the model and ISA unknown rather than failing:
  // the key still separates thread counts and libraries.
  std::ifstream in("/proc/cpuinfo");
  std::string cpuinfo(std::istreambuf_iterator<char>(in), {});
  return cpuDeviceFromCpuinfo(cpuinfo, threads > 0 ? threads : defaultThreads());
}

//===----------------------------------------------------------------------------------===//
// Entries
//===----------------------------------------------------------------------------------===//

std::optional<int64_t> Entry::value(const std::string &name) const {
  for (const Choice &c : choices)
    if (c.name == name)
      return c.value;
  return std::nullopt;
}

bool Entry::operator==(const Entry &o) const {
  return kernel == o.kernel && shape == o.shape && dtype == o.dtype && choices == o.choices &&
         bestSeconds == o.bestSeconds && defaultSeconds == o.defaultSeconds &&
         variants == o.variants;
}

//===----------------------------------------------------------------------------------===//
// The database
//===----------------------------------------------------------------------------------===//

bool Database::load(const std::string &path, std::string *error) {
  clear();
  path_ = path;
  std::string text;
  if (!readFileBytes(path, text, kMaxFileBytes, error))
    return false;
  auto fail = [&](const std::string &message) {
    clear();
    return setError(error, path + ": " + message);
  };
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    return fail("empty file; a tuning database starts with `version: " +
                std::to_string(kVersion) + "`");

  pb::Database db;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &db)) {
    clear();
    return setError(error, path + ":" +
                               (errors.message().empty() ? std::string("0:0: cannot parse")
                                                         : errors.message()) +
                               " (not a valid tuning database)");
  }
  if (db.version() == 0)
    return fail("no `version` field; not a tuning database");
  if (db.version() != kVersion)
    return fail("tuning database version " + std::to_string(db.version()) +
                " is not supported (this build reads version " + std::to_string(kVersion) +
                ")");

  for (const pb::Device &d : db.device()) {
    DeviceKey device{d.description(), d.libraries()};
    if (std::string why = checkDevice(device); !why.empty())
      return fail(why);
    if (devices_.count(device))
      return fail("device " + quoted(device.str()) + " appears twice");
    auto &entries = devices_[device];
    for (const pb::Entry &e : d.entry()) {
      Entry entry;
      entry.kernel = e.kernel();
      entry.shape = e.shape();
      entry.dtype = e.dtype();
      for (const pb::Choice &c : e.choice())
        entry.choices.push_back({c.name(), c.value()});
      entry.bestSeconds = e.best_seconds();
      entry.defaultSeconds = e.default_seconds();
      entry.variants = e.variants();
      if (std::string why = checkEntry(entry); !why.empty())
        return fail("device " + quoted(device.description) + ": " + why);
      EntryKey key{entry.kernel, entry.shape, entry.dtype};
      if (entries.count(key))
        return fail("device " + quoted(device.description) + ": entry " + quoted(entry.kernel) +
                    " shape " + quoted(entry.shape) + " dtype " + quoted(entry.dtype) +
                    " appears twice");
      entries.emplace(std::move(key), std::move(entry));
    }
    // A device block without entries carries nothing; dropping it keeps devices() and the
    // notes about other devices to those with results.
    if (entries.empty())
      devices_.erase(device);
  }
  return true;
}

bool Database::loadIfExists(const std::string &path, std::string *error) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    clear();
    path_ = path;
    return true;
  }
  return load(path, error);
}

bool Database::save(const std::string &path, std::string *error) const {
  pb::Database db;
  db.set_version(kVersion);
  for (const auto &[device, entries] : devices_) {
    if (std::string why = checkDevice(device); !why.empty())
      return setError(error, path + ": cannot save: " + why);
    pb::Device *d = db.add_device();
    d->set_description(device.description);
    d->set_libraries(device.libraries);
    for (const auto &[key, entry] : entries) {
      if (std::string why = checkEntry(entry); !why.empty())
        return setError(error, path + ": cannot save: device " + quoted(device.description) +
                                   ": " + why);
      pb::Entry *e = d->add_entry();
      e->set_kernel(entry.kernel);
      e->set_shape(entry.shape);
      e->set_dtype(entry.dtype);
      for (const Choice &c : entry.choices) {
        pb::Choice *choice = e->add_choice();
        choice->set_name(c.name);
        choice->set_value(c.value);
      }
      e->set_best_seconds(entry.bestSeconds);
      e->set_default_seconds(entry.defaultSeconds);
      e->set_variants(entry.variants);
    }
  }
  google::protobuf::TextFormat::Printer printer;
  // Non-ASCII UTF-8 (a CPU name) stays readable instead of becoming octal escapes.
  printer.SetUseUtf8StringEscaping(true);
  std::string text;
  if (!printer.PrintToString(db, &text))
    return setError(error, path + ": cannot save: the text printer failed");
  return writeFileAtomic(path, kFileHeader + text, error);
}

const Entry *Database::lookup(const DeviceKey &device, const std::string &kernel,
                              const std::string &shape, const std::string &dtype,
                              std::string *note) const {
  auto it = devices_.find(device);
  if (it != devices_.end()) {
    auto found = it->second.find(EntryKey{kernel, shape, dtype});
    return found == it->second.end() ? nullptr : &found->second;
  }
  if (devices_.empty() || !note || noted_.count(device))
    return nullptr;
  noted_.insert(device);
  // Name the other devices in full when the hardware matches (the libraries are what
  // differs, which the user would otherwise have to spot), by description otherwise.
  bool sameHardware = false;
  for (const auto &entry : devices_)
    sameHardware |= entry.first.description == device.description;
  std::vector<std::string> names;
  for (const auto &entry : devices_) {
    std::string name = sameHardware ? entry.first.str() : entry.first.description;
    if (std::find(names.begin(), names.end(), name) == names.end())
      names.push_back(std::move(name));
  }
  std::string others;
  for (size_t i = 0; i < names.size() && i < 3; ++i)
    others += (i ? "; " : "") + names[i];
  if (names.size() > 3)
    others += " and " + std::to_string(names.size() - 3) + " more";
  *note = "tuning database " + (path_.empty() ? std::string("(unsaved)") : path_) +
          " has entries for " + others + ", not for " +
          (sameHardware ? device.str() : device.description) + "; ignoring them";
  return nullptr;
}

bool Database::selectGpu(const std::string &filter, const std::string &libraries,
                         DeviceKey *device, std::string *note, std::string *error) const {
  *device = DeviceKey{};
  if (note)
    note->clear();
  const std::string where =
      "tuning database " + (path_.empty() ? std::string("(unsaved)") : path_);
  // The GPUs by description, each with the libraries its entries were measured with.
  std::map<std::string, std::vector<std::string>> gpus;
  bool cpus = false;
  for (const auto &entry : devices_) {
    if (isGpuDevice(entry.first))
      gpus[entry.first.description].push_back(entry.first.libraries);
    cpus |= isCpuDevice(entry.first);
  }
  auto join = [](const std::vector<std::string> &names) {
    std::string s;
    for (const std::string &n : names)
      s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  std::vector<std::string> all, matching;
  for (const auto &gpu : gpus) {
    all.push_back(gpu.first);
    if (gpu.first.find(filter) != std::string::npos)
      matching.push_back(gpu.first);
  }
  if (matching.empty() && !filter.empty())
    return setError(error, where + " has no GPU matching --tuning-device '" + filter + "' (" +
                               (all.empty() ? std::string("it has no GPU entries")
                                            : "its GPUs: " + join(all)) +
                               ")");
  if (matching.empty()) {
    if (note)
      *note = where + " has no entries for a GPU" +
              (cpus ? " (its CPU entries are for --target cpu)" : "") + "; ignoring it";
    return true;
  }
  if (matching.size() > 1)
    return setError(error, (filter.empty() ? where + " has entries for several GPUs"
                                           : "--tuning-device '" + filter +
                                                 "' matches several GPUs of " + where) +
                               ": " + join(matching) + "; name one with --tuning-device");
  const std::string &description = matching.front();
  const std::vector<std::string> &measured = gpus[description];
  std::string chosen = libraries;
  if (chosen.empty()) {
    if (measured.size() > 1)
      return setError(error, where + " has entries for " + description +
                                 " with several libraries (" + join(measured) +
                                 ") and the program's are unknown");
    chosen = measured.front();
  }
  *device = DeviceKey{description, chosen};
  if (note)
    *note = where + ": using the entries for " + description +
            (filter.empty() ? std::string(", its only GPU")
                            : ", the GPU matching --tuning-device '" + filter + "'");
  return true;
}

void Database::put(const DeviceKey &device, Entry entry) {
  EntryKey key{entry.kernel, entry.shape, entry.dtype};
  devices_[device][std::move(key)] = std::move(entry);
}

void Database::clear() {
  devices_.clear();
  noted_.clear();
}

size_t Database::size() const {
  size_t n = 0;
  for (const auto &entry : devices_)
    n += entry.second.size();
  return n;
}

std::vector<DeviceKey> Database::devices() const {
  std::vector<DeviceKey> out;
  for (const auto &entry : devices_)
    out.push_back(entry.first);
  return out;
}

std::vector<const Entry *> Database::entries(const DeviceKey &device) const {
  std::vector<const Entry *> out;
  auto it = devices_.find(device);
  if (it != devices_.end())
    for (const auto &entry : it->second)
      out.push_back(&entry.second);
  return out;
}

} // namespace llamac::tune
