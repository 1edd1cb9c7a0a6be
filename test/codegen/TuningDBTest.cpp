//===- TuningDBTest.cpp - the tuning database of `llamac tune` -----------------------===//
//
// Round trips through the text file, its readability and byte-stable output, replacement and
// merging across devices, the notes a lookup gives for other devices and other libraries,
// refusal (with the file named, never a crash) of missing, empty, malformed, foreign, binary,
// truncated and randomly damaged files, failed saves, the CPU's device key, and the GPU's:
// its key, the libraries read from a CUDA toolkit's headers, and the choice of the GPU whose
// entries `llamac compile --target cuda` applies.
//
//===----------------------------------------------------------------------------------===//
#include "codegen/TuningDB.h"
#include "runtime/proto/tuning.pb.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

using namespace llamac::tune;
namespace fs = std::filesystem;

namespace {

void writeBytes(const std::string &file, const std::string &bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << file;
}

std::string readBytes(const std::string &file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string &haystack, const std::string &needle) {
  return haystack.find(needle) != std::string::npos;
}

const DeviceKey kEpyc{"cpu: AMD EPYC 7B13; isa: avx avx2 fma; threads: 2",
                      "blis 0.9.0-1 (libblis4-openmp); llamac cpu kernels 1"};
const DeviceKey kH100{"gpu: NVIDIA H100 80GB HBM3; sm_90",
                      "cuda runtime 12.4; cublasLt 120402; llamac cuda kernels 1"};
const DeviceKey kA100{"gpu: NVIDIA A100-SXM4-80GB; sm_80",
                      "cuda runtime 12.4; cublasLt 120402; llamac cuda kernels 1"};
const DeviceKey kXeon{"cpu: Intel(R) Xeon(R) Platinum 8481C; isa: avx avx2 fma avx512f "
                      "avx512bw avx512_vnni avx_vnni amx_tile; threads: 8",
                      "blis 0.9.0-1 (libblis4-openmp); llamac cpu kernels 1"};

Entry attention(int64_t blockQ, double best = 0.0123) {
  Entry e;
  e.kernel = "flash_attention";
  e.shape = "B=8,T=256,S=256,H=6,Hkv=6,D=48,causal=1,window=0";
  e.dtype = "f32";
  e.choices = {{"block_q", blockQ}, {"block_k", 64}};
  e.bestSeconds = best;
  e.defaultSeconds = 0.015100000000000001; // needs all 17 digits to round-trip
  e.variants = 12;
  return e;
}

Entry gemm(const std::string &shape, int64_t mc) {
  Entry e;
  e.kernel = "gemm_nt";
  e.shape = shape;
  e.dtype = "f32";
  e.choices = {{"mc", mc}};
  e.bestSeconds = 1e-4;
  e.defaultSeconds = 2.5e-4;
  e.variants = 4;
  return e;
}

class TuningDBTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "tuningdb-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string &name) const { return dir_ + "/" + name; }

  /// A database of two devices, saved to `path`.
  void saveSample(const std::string &path) {
    Database db;
    db.put(kEpyc, attention(128));
    db.put(kEpyc, gemm("M=512,N=288,K=288", 96));
    db.put(kXeon, attention(64));
    std::string error;
    ASSERT_TRUE(db.save(path, &error)) << error;
  }

  /// Loads `text` as a database file; expects failure with the file named in the message.
  std::string expectRefused(const std::string &text, const std::string &name = "bad.txtpb") {
    std::string path = file(name);
    writeBytes(path, text);
    Database db;
    db.put(kEpyc, attention(1)); // load must replace this, even when it fails
    std::string error;
    EXPECT_FALSE(db.load(path, &error)) << "accepted:\n" << text;
    EXPECT_TRUE(contains(error, path)) << error;
    EXPECT_EQ(db.size(), 0u);
    return error;
  }

  std::string dir_;
};

TEST_F(TuningDBTest, RoundTrip) {
  std::string path = file("db.txtpb");
  saveSample(path);
  Database db;
  std::string error;
  ASSERT_TRUE(db.load(path, &error)) << error;
  EXPECT_EQ(db.path(), path);
  EXPECT_EQ(db.size(), 3u);
  EXPECT_EQ(db.devices(), (std::vector<DeviceKey>{kEpyc, kXeon}));

  const Entry *e = db.lookup(kEpyc, "flash_attention", attention(0).shape, "f32");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, attention(128)); // the doubles bit-exact, the choices in their order
  EXPECT_EQ(e->value("block_q"), 128);
  EXPECT_EQ(e->value("block_k"), 64);
  EXPECT_EQ(e->value("block_z"), std::nullopt);
  const Entry *x = db.lookup(kXeon, "flash_attention", attention(0).shape, "f32");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(*x, attention(64));
  const Entry *g = db.lookup(kEpyc, "gemm_nt", "M=512,N=288,K=288", "f32");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(*g, gemm("M=512,N=288,K=288", 96));

  // Every part of the key counts.
  std::string note;
  EXPECT_EQ(db.lookup(kEpyc, "gemm_nt", "M=512,N=288,K=289", "f32", &note), nullptr);
  EXPECT_EQ(db.lookup(kEpyc, "gemm_nt", "M=512,N=288,K=288", "bf16", &note), nullptr);
  EXPECT_EQ(db.lookup(kEpyc, "gemm_tn", "M=512,N=288,K=288", "f32", &note), nullptr);
  EXPECT_EQ(note, "") << "a device with entries gives no note for an untuned shape";

  std::vector<const Entry *> entries = db.entries(kEpyc);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]->kernel, "flash_attention");
  EXPECT_EQ(entries[1]->kernel, "gemm_nt");
  EXPECT_TRUE(db.entries(DeviceKey{"cpu: other", "x"}).empty());
}

TEST_F(TuningDBTest, FileIsReadableAndByteStable) {
  std::string path = file("db.txtpb");
  saveSample(path);
  std::string text = readBytes(path);
  EXPECT_TRUE(contains(text, "# llamac tuning database")) << text;
  EXPECT_TRUE(contains(text, "version: 1\n")) << text;
  EXPECT_TRUE(contains(text, "kernel: \"flash_attention\"")) << text;
  EXPECT_TRUE(contains(text, "name: \"block_q\"")) << text;
  EXPECT_TRUE(contains(text, "value: 128")) << text;
  EXPECT_TRUE(contains(text, "description: \"" + kEpyc.description + "\"")) << text;
  EXPECT_TRUE(contains(text, "best_seconds: 0.0123")) << text;

  // The same contents put in another order give the same bytes, and so does saving what
  // was loaded: tuning again with nothing new leaves a checked-in file unchanged.
  Database other;
  other.put(kXeon, attention(64));
  other.put(kEpyc, gemm("M=512,N=288,K=288", 96));
  other.put(kEpyc, attention(128));
  std::string error;
  ASSERT_TRUE(other.save(file("other.txtpb"), &error)) << error;
  EXPECT_EQ(readBytes(file("other.txtpb")), text);
  Database loaded;
  ASSERT_TRUE(loaded.load(path, &error)) << error;
  ASSERT_TRUE(loaded.save(file("again.txtpb"), &error)) << error;
  EXPECT_EQ(readBytes(file("again.txtpb")), text);

  // A hand-written file in the documented form loads (comments, one-line messages).
  writeBytes(file("hand.txtpb"), "# tuned by hand\n"
                                 "version: 1\n"
                                 "device {\n"
                                 "  description: \"cpu: Épyc; isa: none; threads: 1\"\n"
                                 "  libraries: \"blis 1\"\n"
                                 "  entry { kernel: \"gemm_nt\" shape: \"M=1\" dtype: \"f32\"\n"
                                 "          choice { name: \"mc\" value: 32 } }\n"
                                 "}\n");
  Database hand;
  ASSERT_TRUE(hand.load(file("hand.txtpb"), &error)) << error;
  const Entry *e =
      hand.lookup({"cpu: Épyc; isa: none; threads: 1", "blis 1"}, "gemm_nt", "M=1", "f32");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value("mc"), 32);
  EXPECT_EQ(e->variants, 0);
  ASSERT_TRUE(hand.save(file("hand2.txtpb"), &error)) << error;
  EXPECT_TRUE(contains(readBytes(file("hand2.txtpb")), "Épyc")) << "UTF-8 kept readable";
}

TEST_F(TuningDBTest, PutReplacesAndMergeKeepsOtherDevices) {
  std::string path = file("db.txtpb");
  {
    Database db;
    db.put(kXeon, attention(64));
    std::string error;
    ASSERT_TRUE(db.save(path, &error)) << error;
  }
  // A tuning run on another machine: load, put its own results, save.
  Database db;
  std::string error;
  ASSERT_TRUE(db.load(path, &error)) << error;
  db.put(kEpyc, attention(32));
  db.put(kEpyc, attention(128, 0.01)); // the same key: replaced, not added
  EXPECT_EQ(db.size(), 2u);
  ASSERT_TRUE(db.save(path, &error)) << error;

  Database merged;
  ASSERT_TRUE(merged.load(path, &error)) << error;
  EXPECT_EQ(merged.size(), 2u);
  const Entry *x = merged.lookup(kXeon, "flash_attention", attention(0).shape, "f32");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(*x, attention(64));
  const Entry *e = merged.lookup(kEpyc, "flash_attention", attention(0).shape, "f32");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(*e, attention(128, 0.01));
  // No temporaries left beside the file.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(TuningDBTest, ForeignDeviceGivesNoteOnce) {
  std::string path = file("db.txtpb");
  Database saved;
  saved.put(kXeon, attention(64));
  std::string error;
  ASSERT_TRUE(saved.save(path, &error)) << error;

  Database db;
  ASSERT_TRUE(db.load(path, &error)) << error;
  std::string note;
  EXPECT_EQ(db.lookup(kEpyc, "flash_attention", attention(0).shape, "f32", &note), nullptr);
  EXPECT_EQ(note, "tuning database " + path + " has entries for " + kXeon.description +
                      ", not for " + kEpyc.description + "; ignoring them");
  // Once: the compiler looks up every launch and should print this one time.
  std::string again;
  EXPECT_EQ(db.lookup(kEpyc, "gemm_nt", "M=1", "f32", &again), nullptr);
  EXPECT_EQ(again, "");
  // Without a note pointer the lookup just fails.
  EXPECT_EQ(db.lookup(kEpyc, "flash_attention", attention(0).shape, "f32"), nullptr);

  // An empty database has nothing to ignore.
  Database empty;
  note.clear();
  EXPECT_EQ(empty.lookup(kEpyc, "gemm_nt", "M=1", "f32", &note), nullptr);
  EXPECT_EQ(note, "");
}

TEST_F(TuningDBTest, LibraryMismatchGivesNote) {
  DeviceKey newer = kEpyc;
  newer.libraries = "blis 1.0-1 (libblis4-openmp); llamac cpu kernels 2";
  Database db;
  db.put(kEpyc, attention(128));
  std::string note;
  EXPECT_EQ(db.lookup(newer, "flash_attention", attention(0).shape, "f32", &note), nullptr);
  // The description alone would read "entries for X, not for X": the libraries are named.
  EXPECT_TRUE(contains(note, kEpyc.libraries)) << note;
  EXPECT_TRUE(contains(note, newer.libraries)) << note;
  EXPECT_TRUE(contains(note, "ignoring them")) << note;
  EXPECT_TRUE(contains(note, "(unsaved)")) << "a database never loaded: " << note;

  // Another thread count is another device.
  DeviceKey fourThreads = kEpyc;
  fourThreads.description = "cpu: AMD EPYC 7B13; isa: avx avx2 fma; threads: 4";
  note.clear();
  EXPECT_EQ(db.lookup(fourThreads, "flash_attention", attention(0).shape, "f32", &note),
            nullptr);
  EXPECT_TRUE(contains(note, "threads: 2")) << note;
  EXPECT_TRUE(contains(note, "threads: 4")) << note;
}

TEST_F(TuningDBTest, MissingFile) {
  std::string path = file("absent.txtpb");
  Database db;
  std::string error;
  EXPECT_FALSE(db.load(path, &error));
  EXPECT_TRUE(contains(error, path)) << error;

  // The first tuning run on a machine: no file yet is an empty database that saves there.
  error.clear();
  ASSERT_TRUE(db.loadIfExists(path, &error)) << error;
  EXPECT_TRUE(db.empty());
  EXPECT_EQ(db.path(), path);
  // But an existing file must still be valid.
  writeBytes(path, "garbage");
  EXPECT_FALSE(db.loadIfExists(path, &error));
  EXPECT_TRUE(contains(error, path)) << error;
}

TEST_F(TuningDBTest, MalformedFilesAreRefused) {
  const std::string device = "device { description: \"cpu: x\" libraries: \"l\" ";
  const std::string entry = "entry { kernel: \"gemm_nt\" shape: \"M=1\" dtype: \"f32\" ";

  EXPECT_TRUE(contains(expectRefused(""), "empty"));
  EXPECT_TRUE(contains(expectRefused("  \n\t\n"), "empty"));
  EXPECT_TRUE(contains(expectRefused("this is not a database"), ":1:6: Message type"));
  EXPECT_TRUE(contains(expectRefused("version: 1\ndevice {\n  description: \"cpu"), ":3:"));
  EXPECT_TRUE(contains(expectRefused("version: 1\ndevice {\n"), ":"));
  EXPECT_TRUE(contains(expectRefused("version: \"one\"\n"), ":1:10:"));
  EXPECT_TRUE(contains(expectRefused("version: 1\ncolour: 3\n"), "colour"));
  EXPECT_TRUE(contains(expectRefused("version: 99\n"), "version 99"));
  EXPECT_TRUE(contains(expectRefused("version: -1\n"), "version -1"));
  EXPECT_TRUE(contains(expectRefused("# comments only\n"), "version"));
  EXPECT_TRUE(contains(expectRefused(device + "}\n"), "version"));
  EXPECT_TRUE(contains(expectRefused("version: 1 version: 1\n"), "version"));
  expectRefused("version: 1\n" + device + entry + "variants: 3000000000 } }");
  expectRefused(std::string("version: 1\0\x01\x02", 14));
  expectRefused("\xff\xfe\x00\x00garbage");

  // Valid syntax, invalid contents.
  EXPECT_TRUE(contains(expectRefused("version: 1 device { libraries: \"l\" }"), "description"));
  EXPECT_TRUE(contains(expectRefused("version: 1 " + device + "entry { dtype: \"f32\" } }"),
                       "no kernel"));
  EXPECT_TRUE(contains(
      expectRefused("version: 1 " + device + "entry { kernel: \"gemm_nt\" shape: \"M=1\" } }"),
      "no dtype"));
  EXPECT_TRUE(contains(expectRefused("version: 1 " + device + entry +
                                     "choice { name: \"mc\" value: 1 } "
                                     "choice { name: \"mc\" value: 2 } } }"),
                       "\"mc\" twice"));
  EXPECT_TRUE(contains(
      expectRefused("version: 1 " + device + entry + "choice { value: 2 } } }"), "name"));
  EXPECT_TRUE(contains(expectRefused("version: 1 " + device + entry + "best_seconds: -1 } }"),
                       "negative or non-finite"));
  EXPECT_TRUE(contains(expectRefused("version: 1 " + device + entry + "best_seconds: nan } }"),
                       "negative or non-finite"));
  EXPECT_TRUE(
      contains(expectRefused("version: 1 " + device + entry + "default_seconds: inf } }"),
               "negative or non-finite"));
  EXPECT_TRUE(contains(expectRefused("version: 1 " + device + entry + "variants: -2 } }"),
                       "negative variant count"));
  EXPECT_TRUE(
      contains(expectRefused("version: 1 " + device + entry + "} " + entry + "} }"), "twice"));
  EXPECT_TRUE(
      contains(expectRefused("version: 1 " + device + entry + "} } " + device + entry + "} }"),
               "appears twice"));
  // Invalid UTF-8 (Latin-1 é) in a string: refused by the parser or by the check after it.
  expectRefused("version: 1 device { description: \"cpu: \xe9\" libraries: \"l\" " + entry +
                "} }");

  // The binary encoding of a valid database is not its text.
  llamac::tuning::Database binary;
  binary.set_version(1);
  llamac::tuning::Device *d = binary.add_device();
  d->set_description("cpu: x");
  d->add_entry()->set_kernel("gemm_nt");
  expectRefused(binary.SerializeAsString(), "binary.pb");
}

TEST_F(TuningDBTest, TruncatedAndDamagedFilesNeverCrash) {
  std::string path = file("db.txtpb");
  saveSample(path);
  const std::string text = readBytes(path);
  // Every prefix: a cut inside a message or a token must fail with the file named; a cut
  // between fields may leave a valid, smaller database, but never one with a wrong entry.
  std::string bad = file("cut.txtpb");
  for (size_t n = 0; n < text.size(); ++n) {
    writeBytes(bad, text.substr(0, n));
    Database db;
    std::string error;
    if (db.load(bad, &error)) {
      for (const DeviceKey &key : db.devices())
        for (const Entry *e : db.entries(key))
          EXPECT_FALSE(e->kernel.empty()) << "prefix " << n;
    } else {
      EXPECT_TRUE(contains(error, bad)) << "prefix " << n << ": " << error;
    }
  }
  // Random byte damage.
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 500; ++trial) {
    std::string damaged = text;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < edits; ++i) {
      size_t at = rng() % damaged.size();
      switch (rng() % 3) {
      case 0:
        damaged[at] = static_cast<char>(rng());
        break;
      case 1:
        damaged.erase(at, 1 + rng() % 8);
        break;
      default:
        damaged.insert(at, 1, static_cast<char>(rng()));
      }
      if (damaged.empty())
        damaged = "x";
    }
    writeBytes(bad, damaged);
    Database db;
    std::string error;
    if (!db.load(bad, &error)) {
      EXPECT_TRUE(contains(error, bad)) << "trial " << trial << ": " << error;
    }
  }
}

TEST_F(TuningDBTest, FailedSaveReportsAndKeepsOldFile) {
  Database db;
  db.put(kEpyc, attention(128));
  std::string error;
  // A directory that does not exist, and a "directory" that is a file (refused even for
  // root, whom permissions do not stop).
  std::string missing = file("no/such/dir/db.txtpb");
  EXPECT_FALSE(db.save(missing, &error));
  EXPECT_TRUE(contains(error, "no/such/dir")) << error;
  writeBytes(file("plain"), "x");
  std::string underFile = file("plain/db.txtpb");
  error.clear();
  EXPECT_FALSE(db.save(underFile, &error));
  EXPECT_TRUE(contains(error, underFile)) << error;
  if (geteuid() != 0) {
    fs::create_directory(file("ro"));
    fs::permissions(file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
    error.clear();
    EXPECT_FALSE(db.save(file("ro/db.txtpb"), &error));
    EXPECT_TRUE(contains(error, file("ro/db.txtpb"))) << error;
  }

  // An invalid entry is refused before anything is written: the old file stays.
  std::string path = file("db.txtpb");
  ASSERT_TRUE(db.save(path, &error)) << error;
  std::string before = readBytes(path);
  Entry broken = attention(1);
  broken.kernel = "gemm_tn";
  broken.choices.push_back({"block_q", 2});
  db.put(kEpyc, broken);
  error.clear();
  EXPECT_FALSE(db.save(path, &error));
  EXPECT_TRUE(contains(error, path)) << error;
  EXPECT_TRUE(contains(error, "twice")) << error;
  EXPECT_EQ(readBytes(path), before);
}

TEST_F(TuningDBTest, CpuinfoParsing) {
  std::string cpuinfo = "processor\t: 0\n"
                        "vendor_id\t: GenuineIntel\n"
                        "model name\t: Intel(R) Xeon(R)   CPU  @ 2.20GHz  \n"
                        "flags\t\t: fpu sse2 avx512_vnni avx2 avx512vl avx amx_tile fma "
                        "avx512f avx_vnni avx512bw avx512_bf16\n"
                        "\n"
                        "processor\t: 1\n"
                        "model name\t: Something Else\n"
                        "flags\t\t: fpu\n";
  DeviceKey key = cpuDeviceFromCpuinfo(cpuinfo, 7);
  EXPECT_EQ(key.description, "cpu: Intel(R) Xeon(R) CPU @ 2.20GHz; isa: avx avx2 fma avx512f "
                             "avx512bw avx512_vnni avx_vnni amx_tile; threads: 7");
  EXPECT_EQ(key.libraries, cpuLibraries());
  EXPECT_EQ(cpuDeviceFromCpuinfo("model name : AMD EPYC\nflags : sse2 avx2\n", 2).description,
            "cpu: AMD EPYC; isa: avx2; threads: 2");
  EXPECT_EQ(cpuDeviceFromCpuinfo("", 1).description, "cpu: unknown; isa: none; threads: 1");
  EXPECT_EQ(cpuDeviceFromCpuinfo("processor : 0\nFeatures : fp asimd\n", 4).description,
            "cpu: unknown; isa: none; threads: 4");
}

TEST_F(TuningDBTest, CurrentCpuDevice) {
  DeviceKey key = currentCpuDevice(3);
  EXPECT_EQ(key.description.rfind("cpu: ", 0), 0u) << key.description;
  EXPECT_TRUE(contains(key.description, "; isa: ")) << key.description;
  EXPECT_TRUE(contains(key.description, "; threads: 3")) << key.description;
  EXPECT_EQ(key.libraries.rfind("blis ", 0), 0u) << key.libraries;
  EXPECT_TRUE(contains(key.libraries, kCpuKernelsVersion)) << key.libraries;
  // Where /proc/cpuinfo names the model, so does the key.
  std::ifstream in("/proc/cpuinfo");
  std::string cpuinfo(std::istreambuf_iterator<char>(in), {});
  if (contains(cpuinfo, "model name"))
    EXPECT_FALSE(contains(key.description, "cpu: unknown")) << key.description;
  EXPECT_EQ(key, currentCpuDevice(3)) << "the key must be stable";
  EXPECT_NE(key, currentCpuDevice(4));
  // 0 (the OpenMP default) records a positive count.
  DeviceKey byDefault = currentCpuDevice(0);
  EXPECT_FALSE(contains(byDefault.description, "threads: 0")) << byDefault.description;
  EXPECT_FALSE(contains(byDefault.description, "threads: -")) << byDefault.description;
}

TEST_F(TuningDBTest, CudaDeviceKey) {
  DeviceKey key = cudaDevice("NVIDIA  H100 80GB HBM3 ", 9, 0, 12040, 120402);
  EXPECT_EQ(key, kH100);
  EXPECT_TRUE(isGpuDevice(key));
  EXPECT_FALSE(isCpuDevice(key));
  EXPECT_TRUE(isCpuDevice(kEpyc));
  EXPECT_FALSE(isGpuDevice(kEpyc));
  EXPECT_EQ(cudaDevice("", 12, 0, 13000, 130100).description, "gpu: unknown; sm_120");
  EXPECT_EQ(cudaLibraries(13000, 130100),
            "cuda runtime 13.0; cublasLt 130100; " + std::string(kCudaKernelsVersion));
  EXPECT_EQ(cudaLibraries(12080, 120803).rfind("cuda runtime 12.8; cublasLt 120803; ", 0), 0u);
}

TEST_F(TuningDBTest, CudaToolkitLibraries) {
  std::string include = file("include");
  fs::create_directories(include);
  // As the toolkit's headers write them, among other defines.
  writeBytes(include + "/cuda_runtime_api.h", "#if !defined(X)\n"
                                              "#define CUDART_VERSION  12040\n"
                                              "#define CUDART_NAME cudart\n"
                                              "#endif\n");
  EXPECT_EQ(cudaToolkitLibraries(include), "") << "no cublas_api.h yet";
  writeBytes(include + "/cublas_api.h", "#define CUBLAS_VER_MAJOR 12\n"
                                        "#define CUBLAS_VER_MINOR 4\n"
                                        "#define CUBLAS_VER_PATCH 2\n"
                                        "#define CUBLAS_VER_BUILD 1\n"
                                        "#define CUBLAS_VERSION (CUBLAS_VER_MAJOR * 10000)\n");
  EXPECT_EQ(cudaToolkitLibraries(include), kH100.libraries);
  writeBytes(include + "/cublas_api.h", "#define CUBLAS_VER_MAJOR 12\n");
  EXPECT_EQ(cudaToolkitLibraries(include), "") << "a version part missing";
  EXPECT_EQ(cudaToolkitLibraries(file("absent")), "");
}

TEST_F(TuningDBTest, SelectGpu) {
  std::string path = file("db.txtpb");
  Database db;
  db.put(kEpyc, attention(128));
  db.put(kH100, attention(64));
  std::string error;
  ASSERT_TRUE(db.save(path, &error)) << error;
  ASSERT_TRUE(db.load(path, &error)) << error;

  // The only GPU, named in the note; CPU keys are not candidates.
  DeviceKey device;
  std::string note;
  ASSERT_TRUE(db.selectGpu("", kH100.libraries, &device, &note, &error)) << error;
  EXPECT_EQ(device, kH100);
  EXPECT_EQ(note, "tuning database " + path + ": using the entries for " + kH100.description +
                      ", its only GPU");
  EXPECT_NE(db.lookup(device, "flash_attention", attention(0).shape, "f32"), nullptr);
  ASSERT_TRUE(db.selectGpu("H100", kH100.libraries, &device, &note, &error)) << error;
  EXPECT_EQ(device, kH100);
  EXPECT_TRUE(contains(note, "the GPU matching --tuning-device 'H100'")) << note;

  // Other libraries: the GPU is still chosen, and the lookup notes and ignores its entries.
  std::string newer = "cuda runtime 13.0; cublasLt 130100; llamac cuda kernels 1";
  ASSERT_TRUE(db.selectGpu("", newer, &device, &note, &error)) << error;
  EXPECT_EQ(device, (DeviceKey{kH100.description, newer}));
  std::string lookupNote;
  EXPECT_EQ(db.lookup(device, "flash_attention", attention(0).shape, "f32", &lookupNote),
            nullptr);
  EXPECT_TRUE(contains(lookupNote, kH100.libraries)) << lookupNote;
  EXPECT_TRUE(contains(lookupNote, "ignoring them")) << lookupNote;
  // Unknown libraries: those of the GPU's entries.
  ASSERT_TRUE(db.selectGpu("", "", &device, &note, &error)) << error;
  EXPECT_EQ(device, kH100);

  // A filter that matches no GPU (a CPU's description does not count) is an error.
  EXPECT_FALSE(db.selectGpu("EPYC", kH100.libraries, &device, &note, &error));
  EXPECT_EQ(error, "tuning database " + path + " has no GPU matching --tuning-device 'EPYC' "
                   "(its GPUs: " + kH100.description + ")");
  EXPECT_EQ(device, DeviceKey{});

  // Several GPUs: one must be named.
  db.put(kA100, attention(128));
  EXPECT_FALSE(db.selectGpu("", kH100.libraries, &device, &note, &error));
  EXPECT_EQ(error, "tuning database " + path + " has entries for several GPUs: " +
                       kA100.description + ", " + kH100.description +
                       "; name one with --tuning-device");
  EXPECT_FALSE(db.selectGpu("NVIDIA", kH100.libraries, &device, &note, &error));
  EXPECT_TRUE(contains(error, "--tuning-device 'NVIDIA' matches several GPUs of tuning "
                              "database " + path + ": "))
      << error;
  ASSERT_TRUE(db.selectGpu("A100", kA100.libraries, &device, &note, &error)) << error;
  EXPECT_EQ(device, kA100);
  ASSERT_TRUE(db.selectGpu("sm_90", kH100.libraries, &device, &note, &error)) << error;
  EXPECT_EQ(device, kH100);

  // One GPU measured with two library sets: fine when the program's are known, an error
  // when they are not (which set would the program run with?).
  DeviceKey older{kA100.description, "cuda runtime 12.1; cublasLt 120103; llamac cuda kernels 1"};
  db.put(older, attention(64));
  ASSERT_TRUE(db.selectGpu("A100", kA100.libraries, &device, &note, &error)) << error;
  EXPECT_EQ(device, kA100);
  EXPECT_FALSE(db.selectGpu("A100", "", &device, &note, &error));
  EXPECT_TRUE(contains(error, "with several libraries")) << error;
  EXPECT_TRUE(contains(error, older.libraries)) << error;

  // No GPU at all: nothing to apply, said once in the note; with a filter, an error.
  Database cpuOnly;
  cpuOnly.put(kEpyc, attention(128));
  error.clear();
  ASSERT_TRUE(cpuOnly.selectGpu("", kH100.libraries, &device, &note, &error)) << error;
  EXPECT_EQ(device, DeviceKey{});
  EXPECT_EQ(note, "tuning database (unsaved) has no entries for a GPU (its CPU entries are for "
                  "--target cpu); ignoring it");
  EXPECT_FALSE(cpuOnly.selectGpu("H100", kH100.libraries, &device, &note, &error));
  EXPECT_TRUE(contains(error, "(it has no GPU entries)")) << error;
  Database empty;
  ASSERT_TRUE(empty.selectGpu("", "", &device, &note, &error)) << error;
  EXPECT_EQ(note, "tuning database (unsaved) has no entries for a GPU; ignoring it");
}

} // namespace
