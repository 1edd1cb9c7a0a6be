//===- CheckpointTest.cpp - atomic, checksummed checkpoints --------------------------===//
//
// Round trips of tensors and training state; detection, with the file and the fault named,
// of a flipped tensor byte, a damaged safetensors header, truncated or corrupt manifests and
// tensors files, and missing directories; loadLatestValid's fallback; crashes simulated at
// each stage of a save (a child process exits there) leaving the previous checkpoint in
// force; pruning, replacement of a step, and the errors a save must refuse.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Checkpoint.h"
#include "runtime/Checksum.h"
#include "runtime/proto/checkpoint.pb.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace llamac;
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

/// A small model's worth of tensors: parameters in several dtypes and optimizer state.
struct Model {
  Tensor wq{DType::F32, {4, 3}}, norm{DType::BF16, {3}}, emb{DType::F16, {5, 2}};
  Tensor count{DType::I64, {}}, ids{DType::I32, {2, 2}}, m{DType::F32, {4, 3}};
  Tensor empty{DType::F32, {0, 7}}, scale{DType::F64, {1}};

  explicit Model(double base = 0) {
    int k = 0;
    for (Tensor *t : {&wq, &norm, &emb, &count, &ids, &m, &scale})
      for (double &v : t->data)
        v = isFloat(t->dtype) ? base + 0.37 * ++k - 1.5 : base + 3 * ++k - 7;
    for (Tensor *t : {&wq, &norm, &emb, &count, &ids, &m, &scale})
      t->round();
  }
  std::vector<std::pair<std::string, const Tensor *>> list() const {
    return {{"layers.0.wq", &wq}, {"norm", &norm},       {"tok_embeddings", &emb},
            {"adam.step", &count}, {"ids", &ids},         {"adam.m.layers.0.wq", &m},
            {"empty", &empty},     {"loss_scale", &scale}};
  }
};

CheckpointState makeState(int64_t step) {
  CheckpointState s;
  s.modelName = "tiny";
  s.config = {{"dim", "64"}, {"n_layers", "2"}, {"vocab", "320"}, {"note", "naïve ✓"}};
  s.step = step;
  s.tokensConsumed = static_cast<uint64_t>(step) * 4096;
  s.seed = 0xfeedbeefcafeull;
  s.schedule = {{"lr", 3e-4}, {"warmup_steps", 100}};
  s.extra = {{"skipped_batches", "17,42"}};
  return s;
}

class CheckpointTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "checkpoint-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    root_ = dir_ + "/ckpt";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void save(int64_t step, const Model &model, unsigned keepLast = 0,
            CheckpointSaveResult *result = nullptr) {
    CheckpointSaveOptions options;
    options.keepLast = keepLast;
    std::string error;
    ASSERT_TRUE(saveCheckpoint(root_, makeState(step), model.list(), options, result, &error))
        << error;
  }
  std::string stepDir(int64_t step) const { return root_ + "/step-" + std::to_string(step); }
  std::string tensorsFile(int64_t step) const { return stepDir(step) + "/tensors.safetensors"; }
  std::string manifestFile(int64_t step) const { return stepDir(step) + "/manifest.pb"; }

  /// The byte range of tensor `index` in a tensors file (8-byte size, header, then data).
  static std::pair<size_t, size_t> tensorRange(const std::string &bytes, const Model &model,
                                               size_t index) {
    uint64_t header = 0;
    for (int i = 0; i < 8; ++i)
      header |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
    size_t offset = 8 + header;
    auto list = model.list();
    for (size_t i = 0; i < index; ++i)
      offset += list[i].second->data.size() * dtypeSize(list[i].second->dtype);
    const Tensor &t = *list[index].second;
    return {offset, offset + t.data.size() * dtypeSize(t.dtype)};
  }

  std::string dir_, root_;
};

void expectSameTensors(const TensorFile &file, const Model &model) {
  auto list = model.list();
  ASSERT_EQ(file.tensors.size(), list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    EXPECT_EQ(file.tensors[i].first, list[i].first);
    EXPECT_EQ(file.tensors[i].second.dtype, list[i].second->dtype);
    EXPECT_EQ(file.tensors[i].second.shape, list[i].second->shape);
    EXPECT_EQ(file.tensors[i].second.data, list[i].second->data) << list[i].first;
  }
}

void expectSameState(const CheckpointState &a, const CheckpointState &b) {
  EXPECT_EQ(a.modelName, b.modelName);
  EXPECT_EQ(a.config, b.config);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.tokensConsumed, b.tokensConsumed);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.schedule, b.schedule);
  EXPECT_EQ(a.extra, b.extra);
}

//===----------------------------------------------------------------------------------===//
// Round trips and layout
//===----------------------------------------------------------------------------------===//

TEST_F(CheckpointTest, RoundTrip) {
  Model model;
  CheckpointSaveResult result;
  save(100, model, 0, &result);
  EXPECT_EQ(result.directory, stepDir(100));
  EXPECT_TRUE(result.pruned.empty());
  EXPECT_EQ(result.warning, "");
  EXPECT_EQ(readBytes(root_ + "/latest"), "step-100\n");
  // The committed directory, the pointer and the save lock: no temporaries.
  std::vector<std::string> names;
  for (const auto &entry : fs::directory_iterator(root_))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{".lock", "latest", "step-100"}));
  names.clear();
  for (const auto &entry : fs::directory_iterator(stepDir(100)))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"manifest.pb", "tensors.safetensors"}));

  for (int64_t step : {int64_t(-1), int64_t(100)}) {
    LoadedCheckpoint loaded;
    std::string error;
    ASSERT_TRUE(loadCheckpoint(root_, step, loaded, &error)) << error;
    expectSameState(loaded.state, makeState(100));
    expectSameTensors(loaded.tensors, model);
    EXPECT_EQ(loaded.directory, stepDir(100));
    EXPECT_GT(loaded.wallTime, 1.6e9);
  }
  LoadedCheckpoint latest;
  std::string error;
  ASSERT_TRUE(loadLatestValid(root_, latest, &error)) << error;
  EXPECT_TRUE(latest.rejected.empty());
  EXPECT_EQ(latest.note, "");
  expectSameTensors(latest.tensors, model);
  EXPECT_TRUE(verifyCheckpoint(stepDir(100), &error)) << error;
  EXPECT_EQ(listCheckpoints(root_), std::vector<int64_t>{100});
}

TEST_F(CheckpointTest, ManifestRecordsEveryChecksum) {
  Model model;
  save(7, model);
  std::string bytes = readBytes(manifestFile(7));
  checkpoint::ManifestFile file;
  ASSERT_TRUE(file.ParseFromString(bytes));
  EXPECT_EQ(file.manifest_crc32c(), crc32c(file.manifest()));
  checkpoint::Manifest manifest;
  ASSERT_TRUE(manifest.ParseFromString(file.manifest()));
  EXPECT_EQ(manifest.format_version(), 1u);
  EXPECT_EQ(manifest.model_name(), "tiny");
  EXPECT_EQ(manifest.step(), 7);
  EXPECT_EQ(manifest.tokens_consumed(), 7u * 4096);
  EXPECT_EQ(manifest.config().at("n_layers"), "2");
  EXPECT_EQ(manifest.schedule().at("lr"), 3e-4);
  std::string tensors = readBytes(tensorsFile(7));
  EXPECT_EQ(manifest.tensors_file(), "tensors.safetensors");
  EXPECT_EQ(manifest.tensors_file_size(), tensors.size());
  EXPECT_EQ(manifest.tensors_file_crc32c(), crc32c(tensors));
  auto list = model.list();
  ASSERT_EQ(manifest.tensors_size(), static_cast<int>(list.size()));
  for (size_t i = 0; i < list.size(); ++i) {
    const auto &entry = manifest.tensors(static_cast<int>(i));
    EXPECT_EQ(entry.name(), list[i].first);
    EXPECT_EQ(entry.dtype(), dtypeName(list[i].second->dtype));
    EXPECT_EQ(std::vector<int64_t>(entry.shape().begin(), entry.shape().end()),
              list[i].second->shape);
    auto [begin, end] = tensorRange(tensors, model, i);
    EXPECT_EQ(entry.crc32c(), crc32c(std::string_view(tensors).substr(begin, end - begin)))
        << entry.name();
  }
}

//===----------------------------------------------------------------------------------===//
// Damage is detected and named
//===----------------------------------------------------------------------------------===//

TEST_F(CheckpointTest, FlippedTensorByteIsNamed) {
  Model model;
  save(100, model);
  std::string good = readBytes(tensorsFile(100));
  for (size_t index : {size_t(0), size_t(2), size_t(5), size_t(7)}) {
    auto [begin, end] = tensorRange(good, model, index);
    std::string bad = good;
    bad[(begin + end) / 2] ^= 0x10;
    writeBytes(tensorsFile(100), bad);
    LoadedCheckpoint loaded;
    std::string error;
    EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error));
    EXPECT_TRUE(contains(error, tensorsFile(100) + ": tensor '" + model.list()[index].first +
                                    "' fails its checksum"))
        << error;
    EXPECT_FALSE(verifyCheckpoint(stepDir(100), &error));
  }
  // A flipped byte in the safetensors header (inside a dtype name, sizes unchanged).
  std::string bad = good;
  size_t pos = bad.find("\"F32\"");
  ASSERT_NE(pos, std::string::npos);
  bad[pos + 1] = 'G';
  writeBytes(tensorsFile(100), bad);
  LoadedCheckpoint loaded;
  std::string error;
  EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error));
  EXPECT_TRUE(contains(error, tensorsFile(100) + ": fails its checksum")) << error;
  EXPECT_TRUE(contains(error, "header is corrupt")) << error;
}

TEST_F(CheckpointTest, TruncatedOrMissingTensorsFile) {
  Model model;
  save(100, model);
  std::string good = readBytes(tensorsFile(100));
  for (size_t cut : {size_t(0), size_t(4), size_t(20), good.size() - 1}) {
    writeBytes(tensorsFile(100), good.substr(0, cut));
    LoadedCheckpoint loaded;
    std::string error;
    EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error)) << cut;
    EXPECT_TRUE(contains(error, tensorsFile(100) + ": ")) << error;
    EXPECT_TRUE(contains(error, "truncated")) << error;
  }
  writeBytes(tensorsFile(100), good + "extra");
  LoadedCheckpoint loaded;
  std::string error;
  EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error));
  EXPECT_TRUE(contains(error, tensorsFile(100))) << error;
  fs::remove(tensorsFile(100));
  EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error));
  EXPECT_TRUE(contains(error, tensorsFile(100) + ": cannot open")) << error;
}

TEST_F(CheckpointTest, TruncatedOrCorruptManifest) {
  Model model;
  save(100, model);
  std::string good = readBytes(manifestFile(100));
  for (size_t cut : {size_t(0), size_t(1), size_t(5), good.size() / 2, good.size() - 5,
                     good.size() - 1}) {
    writeBytes(manifestFile(100), good.substr(0, cut));
    LoadedCheckpoint loaded;
    std::string error;
    EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error)) << cut;
    EXPECT_TRUE(contains(error, manifestFile(100) + ": ")) << error;
    EXPECT_TRUE(contains(error, "truncated")) << cut << ": " << error;
  }
  // Every single flipped bit in the manifest is caught (CRC, parse or magic).
  for (size_t i = 0; i < good.size(); i += 7) {
    std::string bad = good;
    bad[i] ^= 0x04;
    writeBytes(manifestFile(100), bad);
    LoadedCheckpoint loaded;
    std::string error;
    EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error)) << i;
    EXPECT_TRUE(contains(error, manifestFile(100))) << error;
  }
  // Another protobuf entirely.
  checkpoint::ManifestFile other;
  other.set_magic(0x12345678);
  writeBytes(manifestFile(100), other.SerializeAsString());
  LoadedCheckpoint loaded;
  std::string error;
  EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error));
  EXPECT_TRUE(contains(error, "not a llamac checkpoint manifest")) << error;
  fs::remove(manifestFile(100));
  EXPECT_FALSE(loadCheckpoint(root_, 100, loaded, &error));
  EXPECT_TRUE(contains(error, manifestFile(100) + ": cannot open")) << error;
}

TEST_F(CheckpointTest, ManifestOfAnotherStepIsRejected) {
  Model model;
  save(100, model);
  fs::copy(stepDir(100), stepDir(101));
  LoadedCheckpoint loaded;
  std::string error;
  EXPECT_FALSE(loadCheckpoint(root_, 101, loaded, &error));
  EXPECT_TRUE(contains(error, "records step 100 but the directory is step-101")) << error;
}

TEST_F(CheckpointTest, MissingDirectoriesAndPointers) {
  LoadedCheckpoint loaded;
  std::string error;
  EXPECT_FALSE(loadCheckpoint(root_, 5, loaded, &error));
  EXPECT_TRUE(contains(error, stepDir(5) + ": checkpoint directory missing")) << error;
  EXPECT_FALSE(loadCheckpoint(root_, -1, loaded, &error));
  EXPECT_TRUE(contains(error, root_ + "/latest: cannot open")) << error;
  EXPECT_FALSE(loadLatestValid(root_, loaded, &error));
  EXPECT_TRUE(contains(error, root_ + ": no checkpoint directory")) << error;
  fs::create_directories(root_);
  EXPECT_FALSE(loadLatestValid(root_, loaded, &error));
  EXPECT_TRUE(contains(error, "no valid checkpoint (none saved)")) << error;

  Model model;
  save(100, model);
  writeBytes(root_ + "/latest", "garbage\n");
  EXPECT_FALSE(loadCheckpoint(root_, -1, loaded, &error));
  EXPECT_TRUE(contains(error, root_ + "/latest: does not name a checkpoint")) << error;
  // loadLatestValid scans instead, and says so.
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 100);
  EXPECT_TRUE(contains(loaded.note, "no usable 'latest' pointer")) << loaded.note;
  ASSERT_EQ(loaded.rejected.size(), 1u);
  // The pointer names a directory that is gone.
  writeBytes(root_ + "/latest", "step-300\n");
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 100);
  EXPECT_TRUE(contains(loaded.note, "'latest' names step-300, which was rejected"))
      << loaded.note;
  EXPECT_TRUE(contains(loaded.note, stepDir(300) + ": checkpoint directory missing"))
      << loaded.note;
}

//===----------------------------------------------------------------------------------===//
// Falling back, crashing, pruning
//===----------------------------------------------------------------------------------===//

TEST_F(CheckpointTest, FallsBackToThePreviousValidCheckpoint) {
  Model m100(100), m200(200), m300(300);
  save(100, m100);
  save(200, m200);
  save(300, m300);
  std::string bytes = readBytes(tensorsFile(300));
  bytes[bytes.size() - 3] ^= 0xff;
  writeBytes(tensorsFile(300), bytes);

  LoadedCheckpoint loaded;
  std::string error;
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 200);
  expectSameTensors(loaded.tensors, m200);
  ASSERT_EQ(loaded.rejected.size(), 1u);
  EXPECT_TRUE(contains(loaded.rejected[0], tensorsFile(300))) << loaded.rejected[0];
  EXPECT_TRUE(contains(loaded.note, "loaded step-200")) << loaded.note;
  EXPECT_TRUE(contains(loaded.note, "'latest' names step-300, which was rejected"))
      << loaded.note;

  // Two bad ones: back to step 100.
  writeBytes(manifestFile(200), readBytes(manifestFile(200)).substr(0, 10));
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 100);
  expectSameTensors(loaded.tensors, m100);
  EXPECT_EQ(loaded.rejected.size(), 2u);

  // None left: the error lists every rejection.
  fs::remove_all(stepDir(100));
  EXPECT_FALSE(loadLatestValid(root_, loaded, &error));
  EXPECT_TRUE(contains(error, "no valid checkpoint")) << error;
  EXPECT_TRUE(contains(error, tensorsFile(300))) << error;
  EXPECT_TRUE(contains(error, manifestFile(200))) << error;
}

/// Saves step 200 in a child process that exits at `stage`, as a crash there would, and
/// returns the child's exit status (3 when it stopped at the stage).
int crashDuringSave(const std::string &root, const Model &model, const std::string &stage) {
  pid_t pid = ::fork();
  if (pid == 0) {
    CheckpointSaveOptions options;
    options.onStage = [&](const std::string &s) {
      if (s == stage)
        ::_exit(3);
    };
    std::string error;
    saveCheckpoint(root, makeState(200), model.list(), options, nullptr, &error);
    ::_exit(0); // the stage was never reached
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
    return -1;
  return WEXITSTATUS(status);
}

TEST_F(CheckpointTest, CrashBeforeTheRenameLeavesTheOldCheckpoint) {
  Model m100(100), m200(200);
  save(100, m100);
  for (std::string stage : {"tensors-written", "manifest-written", "before-rename"}) {
    ASSERT_EQ(crashDuringSave(root_, m200, stage), 3) << stage;
    // The uncommitted temporary is all that is left of the save.
    EXPECT_TRUE(fs::exists(stepDir(200) + ".tmp")) << stage;
    EXPECT_FALSE(fs::exists(stepDir(200))) << stage;
    EXPECT_EQ(readBytes(root_ + "/latest"), "step-100\n");
    EXPECT_EQ(listCheckpoints(root_), std::vector<int64_t>{100});
    LoadedCheckpoint loaded;
    std::string error;
    ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
    EXPECT_EQ(loaded.state.step, 100);
    EXPECT_TRUE(loaded.rejected.empty());
    expectSameTensors(loaded.tensors, m100);
  }
  // The next save of that step clears the temporary and commits.
  save(200, m200);
  EXPECT_FALSE(fs::exists(stepDir(200) + ".tmp"));
  LoadedCheckpoint loaded;
  std::string error;
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 200);
  expectSameTensors(loaded.tensors, m200);
}

TEST_F(CheckpointTest, CrashAfterTheRenameBeforeTheLatestPointer) {
  Model m100(100), m200(200);
  save(100, m100);
  ASSERT_EQ(crashDuringSave(root_, m200, "renamed"), 3);
  // step-200 is committed and valid; `latest` still names step 100, which stays the state
  // to resume from (the run redoes steps 100..200 and saves step 200 again).
  std::string error;
  EXPECT_TRUE(verifyCheckpoint(stepDir(200), &error)) << error;
  EXPECT_EQ(readBytes(root_ + "/latest"), "step-100\n");
  LoadedCheckpoint loaded;
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 100);
  save(200, m200);
  EXPECT_FALSE(fs::exists(stepDir(200) + ".replaced"));
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 200);
}

TEST_F(CheckpointTest, KeepsTheLastK) {
  Model model;
  for (int64_t step = 1; step <= 4; ++step)
    save(step * 10, model, 2);
  CheckpointSaveResult result;
  save(50, model, 2, &result);
  EXPECT_EQ(result.pruned, std::vector<int64_t>{30});
  EXPECT_EQ(listCheckpoints(root_), (std::vector<int64_t>{40, 50}));

  // A run resumed from an earlier step saves step 45: later checkpoints are another run's
  // and are kept; older ones are pruned.
  save(20, model);
  save(45, model, 1, &result);
  EXPECT_EQ(result.pruned, (std::vector<int64_t>{20, 40}));
  EXPECT_EQ(listCheckpoints(root_), (std::vector<int64_t>{45, 50}));
  LoadedCheckpoint loaded;
  std::string error;
  ASSERT_TRUE(loadLatestValid(root_, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 45) << "latest, not the newer step of the abandoned run";

  std::vector<int64_t> pruned;
  ASSERT_TRUE(pruneCheckpoints(root_, 1, -1, &pruned, &error)) << error;
  EXPECT_EQ(pruned, std::vector<int64_t>{45});
  EXPECT_EQ(listCheckpoints(root_), std::vector<int64_t>{50});
}

TEST_F(CheckpointTest, SavingAStepAgainReplacesIt) {
  Model first(1), second(2);
  save(10, first);
  save(10, second);
  LoadedCheckpoint loaded;
  std::string error;
  ASSERT_TRUE(loadCheckpoint(root_, 10, loaded, &error)) << error;
  expectSameTensors(loaded.tensors, second);
  EXPECT_FALSE(fs::exists(stepDir(10) + ".replaced"));
  EXPECT_FALSE(fs::exists(stepDir(10) + ".tmp"));
}

TEST_F(CheckpointTest, ListingIgnoresEverythingButCommittedSteps) {
  Model model;
  save(3, model);
  fs::create_directories(root_ + "/step-9.tmp");
  fs::create_directories(root_ + "/step-8.replaced");
  fs::create_directories(root_ + "/step-x");
  fs::create_directories(root_ + "/step-");
  fs::create_directories(root_ + "/step-+4");
  fs::create_directories(root_ + "/other");
  writeBytes(root_ + "/step-12", "a file, not a directory");
  EXPECT_EQ(listCheckpoints(root_), std::vector<int64_t>{3});
  EXPECT_TRUE(listCheckpoints(root_ + "/missing").empty());
}

TEST_F(CheckpointTest, SaveRefusesBadInput) {
  Model model;
  save(1, model);
  const std::string latestBefore = readBytes(root_ + "/latest");
  std::string error;
  auto list = model.list();

  list.push_back({"layers.0.wq", &model.wq});
  EXPECT_FALSE(saveCheckpoint(root_, makeState(2), list, {}, nullptr, &error));
  EXPECT_TRUE(contains(error, "duplicate tensor name")) << error;

  list = model.list();
  list.push_back({"null", nullptr});
  EXPECT_FALSE(saveCheckpoint(root_, makeState(2), list, {}, nullptr, &error));
  EXPECT_TRUE(contains(error, "tensor 'null' is null")) << error;

  Tensor wrong(DType::F32, {2, 2});
  wrong.data.resize(3); // shape and data disagree
  EXPECT_FALSE(saveCheckpoint(root_, makeState(2), {{"wrong", &wrong}}, {}, nullptr, &error));
  EXPECT_TRUE(contains(error, "'wrong'")) << error;

  CheckpointState state = makeState(2);
  state.config["bad"] = "\xff\xfe";
  EXPECT_FALSE(saveCheckpoint(root_, state, model.list(), {}, nullptr, &error));
  EXPECT_TRUE(contains(error, "the config value of 'bad' is not valid UTF-8")) << error;

  EXPECT_FALSE(saveCheckpoint(root_, makeState(-1), model.list(), {}, nullptr, &error));
  EXPECT_TRUE(contains(error, "negative step")) << error;

  writeBytes(dir_ + "/file", "x");
  EXPECT_FALSE(saveCheckpoint(dir_ + "/file", makeState(2), model.list(), {}, nullptr, &error));
  EXPECT_TRUE(contains(error, dir_ + "/file")) << error;

  // A file where the step's directory would go is the user's: it is not replaced.
  writeBytes(stepDir(2), "notes");
  EXPECT_FALSE(saveCheckpoint(root_, makeState(2), model.list(), {}, nullptr, &error));
  EXPECT_TRUE(contains(error, stepDir(2) + ": exists and is not a checkpoint directory"))
      << error;
  EXPECT_EQ(readBytes(stepDir(2)), "notes");
  fs::remove(stepDir(2));

  // Nothing committed, nothing left behind, the pointer untouched.
  EXPECT_EQ(listCheckpoints(root_), std::vector<int64_t>{1});
  EXPECT_FALSE(fs::exists(stepDir(2) + ".tmp"));
  EXPECT_EQ(readBytes(root_ + "/latest"), latestBefore);
}

TEST_F(CheckpointTest, OneSaverAtATime) {
  Model model;
  save(1, model);
  // Another process holds the lock (flock locks belong to the open file description, so a
  // second open in this process contends like another process would).
  int fd = ::open((root_ + "/.lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0) << std::strerror(errno);
  std::string error;
  EXPECT_FALSE(saveCheckpoint(root_, makeState(2), model.list(), {}, nullptr, &error));
  EXPECT_TRUE(contains(error, "another process is saving a checkpoint here")) << error;
  EXPECT_EQ(listCheckpoints(root_), std::vector<int64_t>{1});
  ::close(fd);
  EXPECT_TRUE(saveCheckpoint(root_, makeState(2), model.list(), {}, nullptr, &error)) << error;
  EXPECT_EQ(listCheckpoints(root_), (std::vector<int64_t>{1, 2}));
}

TEST_F(CheckpointTest, EmptyCheckpointRoundTrips) {
  std::string error;
  CheckpointState state;
  state.step = 0;
  ASSERT_TRUE(saveCheckpoint(root_, state, {}, {}, nullptr, &error)) << error;
  LoadedCheckpoint loaded;
  ASSERT_TRUE(loadCheckpoint(root_, -1, loaded, &error)) << error;
  EXPECT_EQ(loaded.state.step, 0);
  EXPECT_TRUE(loaded.tensors.tensors.empty());
}

} // namespace
