//===- TokenDataTest.cpp - token caches, splits, training and validation batches ----===//
//
// The cache is built, reused, and rebuilt whenever the corpus, the tokenizer or the options
// change or the cache is damaged; a cache that cannot be written is only a note. Splits and
// batches are checked against the token stream: targets are the next tokens, the windows
// depend only on (seed, step, micro-batch, rank), and the validation set is fixed. Every
// error path has its test. A tokenizer is trained here on a generated corpus.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/TokenData.h"
#include "runtime/Tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/time.h>

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

std::string makeCorpus(int lines, uint32_t seed = 1) {
  static const char *const words[] = {"the",   "river", "ran",   "under", "a",     "stone",
                                      "bridge", "and",  "light", "fell",  "on",    "water",
                                      "in",    "the",   "year",  "of",    "many",  "gardens",
                                      "café",  "naïve", "model", "token", "batch", "step"};
  constexpr size_t numWords = sizeof(words) / sizeof(words[0]);
  uint64_t state = seed;
  auto next = [&]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  std::string text;
  for (int l = 0; l < lines; ++l) {
    int n = 3 + static_cast<int>(next() % 10);
    for (int w = 0; w < n; ++w) {
      if (w)
        text += ' ';
      text += next() % 8 == 0 ? std::to_string(next() % 1000) : words[next() % numWords];
    }
    text += ".\n";
    if (next() % 10 == 0)
      text += "\n"; // blank lines are skipped
  }
  return text;
}

/// Sets a file's modification time (to simulate an edit that keeps the size).
void setMtime(const std::string &file, time_t seconds) {
  struct timeval times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimes(file.c_str(), times), 0) << std::strerror(errno);
}

class TokenDataTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!tokenizerBackendAvailable(&why))
      GTEST_SKIP() << "SentencePiece cannot be loaded here: " << why;
    std::string pattern = ::testing::TempDir() + "tokendata-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    corpus_ = path("corpus.txt");
    writeBytes(corpus_, makeCorpus(400));
    std::string error;
    ASSERT_TRUE(trainTokenizer(corpus_, 320, path("tok.model"), &error)) << error;
    ASSERT_TRUE(tok_.load(path("tok.model"), &error)) << error;
  }
  void TearDown() override {
    if (dir_.empty())
      return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  /// The ids TokenData must produce: per non-empty line, [BOS] ids [EOS].
  std::vector<uint32_t> expectedTokens(const std::string &text, bool bos, bool eos) {
    std::vector<uint32_t> out;
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      std::string line = text.substr(start, nl == std::string::npos ? nl : nl - start);
      start = nl == std::string::npos ? text.size() : nl + 1;
      if (line.empty())
        continue;
      std::vector<int32_t> ids;
      std::string error;
      EXPECT_TRUE(tok_.encode(line, bos, ids, &error)) << error;
      out.insert(out.end(), ids.begin(), ids.end());
      if (eos)
        out.push_back(static_cast<uint32_t>(tok_.eosId()));
    }
    return out;
  }

  std::string dir_, corpus_;
  Tokenizer tok_;
};

//===----------------------------------------------------------------------------------===//
// The cache
//===----------------------------------------------------------------------------------===//

TEST_F(TokenDataTest, BuildsTheCacheThenReusesIt) {
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, {}, &error)) << error;
  EXPECT_FALSE(data.fromCache());
  EXPECT_EQ(data.cachePath(), corpus_ + ".tokens");
  EXPECT_NE(data.note().find("there was no cache yet"), std::string::npos) << data.note();
  EXPECT_EQ(data.tokens(), expectedTokens(readBytes(corpus_), true, false));
  EXPECT_EQ(data.vocabSize(), 320u);
  EXPECT_TRUE(fs::exists(corpus_ + ".tokens"));

  TokenData again;
  ASSERT_TRUE(again.load(corpus_, tok_, {}, &error)) << error;
  EXPECT_TRUE(again.fromCache());
  EXPECT_EQ(again.note(), "");
  EXPECT_EQ(again.tokens(), data.tokens());
  // Nothing but the corpus, the model and the cache in the directory: no temporaries.
  std::set<std::string> names;
  for (const auto &entry : fs::directory_iterator(dir_))
    names.insert(entry.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"corpus.txt", "corpus.txt.tokens", "tok.model"}));
}

TEST_F(TokenDataTest, CacheFormat) {
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, {}, &error)) << error;
  std::string bytes = readBytes(data.cachePath());
  ASSERT_GE(bytes.size(), kTokenCacheHeaderSize);
  auto u32 = [&](size_t off) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[off + i])) << (8 * i);
    return v;
  };
  auto u64 = [&](size_t off) { return u32(off) | static_cast<uint64_t>(u32(off + 4)) << 32; };
  EXPECT_EQ(bytes.substr(0, 8), "LLTOKENS");
  EXPECT_EQ(u32(8), kTokenCacheVersion);
  EXPECT_EQ(u32(12), 2u) << "a 320-piece vocabulary fits 16-bit ids";
  EXPECT_EQ(u32(16), 320u);
  EXPECT_EQ(u32(20), 1u) << "BOS per line";
  EXPECT_EQ(u64(24), tok_.checksum());
  EXPECT_EQ(u64(32), fs::file_size(corpus_));
  EXPECT_EQ(u64(48), data.tokens().size());
  EXPECT_EQ(bytes.size(), kTokenCacheHeaderSize + 2 * data.tokens().size());
  for (size_t i = 0; i < 10; ++i) {
    uint32_t id = static_cast<unsigned char>(bytes[64 + 2 * i]) |
                  static_cast<unsigned char>(bytes[65 + 2 * i]) << 8;
    EXPECT_EQ(id, data.tokens()[i]);
  }
}

TEST_F(TokenDataTest, RebuildsWhenTheCorpusChanges) {
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, {}, &error)) << error;
  // Same size, new contents and modification time.
  std::string text = readBytes(corpus_);
  std::swap(text[0], text[1]);
  writeBytes(corpus_, text);
  setMtime(corpus_, 1000000000);
  TokenData changed;
  ASSERT_TRUE(changed.load(corpus_, tok_, {}, &error)) << error;
  EXPECT_FALSE(changed.fromCache());
  EXPECT_NE(changed.note().find("the corpus changed"), std::string::npos) << changed.note();
  EXPECT_EQ(changed.tokens(), expectedTokens(text, true, false));
  // Appended text.
  writeBytes(corpus_, text + "one more line.\n");
  ASSERT_TRUE(changed.load(corpus_, tok_, {}, &error)) << error;
  EXPECT_FALSE(changed.fromCache());
  EXPECT_EQ(changed.tokens(), expectedTokens(text + "one more line.\n", true, false));
}

TEST_F(TokenDataTest, RebuildsForAnotherTokenizerOrOtherOptions) {
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, {}, &error)) << error;

  Tokenizer other;
  ASSERT_TRUE(trainTokenizer(corpus_, 340, path("other.model"), &error)) << error;
  ASSERT_TRUE(other.load(path("other.model"), &error)) << error;
  TokenData withOther;
  ASSERT_TRUE(withOther.load(corpus_, other, {}, &error)) << error;
  EXPECT_FALSE(withOther.fromCache());
  EXPECT_NE(withOther.note().find("another tokenizer"), std::string::npos) << withOther.note();
  EXPECT_EQ(withOther.vocabSize(), 340u);

  TokenDataOptions eos;
  eos.eosPerLine = true;
  TokenData withEos;
  ASSERT_TRUE(withEos.load(corpus_, tok_, eos, &error)) << error;
  EXPECT_NE(withEos.note().find("another tokenizer"), std::string::npos)
      << "the cache now holds the other tokenizer's ids: " << withEos.note();
  EXPECT_EQ(withEos.tokens(), expectedTokens(readBytes(corpus_), true, true));
  TokenData withEosAgain;
  ASSERT_TRUE(withEosAgain.load(corpus_, tok_, eos, &error)) << error;
  EXPECT_TRUE(withEosAgain.fromCache());
  TokenData withoutEos;
  ASSERT_TRUE(withoutEos.load(corpus_, tok_, {}, &error)) << error;
  EXPECT_NE(withoutEos.note().find("other BOS/EOS options"), std::string::npos)
      << withoutEos.note();
}

TEST_F(TokenDataTest, DamagedCachesAreRebuilt) {
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, {}, &error)) << error;
  const std::string cache = data.cachePath();
  const std::string good = readBytes(cache);
  struct Case {
    std::string bytes, reason;
  };
  std::string flippedId = good;
  flippedId[good.size() - 1] ^= 0x01;
  std::string flippedHeader = good;
  flippedHeader[50] ^= 0x40;
  std::vector<Case> cases = {
      {good.substr(0, good.size() - 2), "truncated or has extra bytes"},
      {good + "xy", "truncated or has extra bytes"},
      {flippedId, "its ids are corrupt"},
      {flippedHeader, "its header is corrupt"},
      {good.substr(0, 20), "truncated"},
      {"", "truncated"},
      {std::string(100, 'x'), "not a llamac token cache"},
  };
  for (const Case &c : cases) {
    writeBytes(cache, c.bytes);
    TokenData again;
    ASSERT_TRUE(again.load(corpus_, tok_, {}, &error)) << error;
    EXPECT_FALSE(again.fromCache());
    EXPECT_NE(again.note().find(c.reason), std::string::npos) << again.note();
    EXPECT_EQ(again.tokens(), data.tokens());
    EXPECT_EQ(readBytes(cache), good) << "the cache is rewritten";
  }
}

TEST_F(TokenDataTest, UnwritableCacheIsOnlyANote) {
  TokenDataOptions options;
  options.cachePath = path("missing-dir/corpus.tokens");
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, options, &error)) << error;
  EXPECT_NE(data.note().find("could not write the token cache"), std::string::npos)
      << data.note();
  EXPECT_EQ(data.tokens(), expectedTokens(readBytes(corpus_), true, false));
}

TEST_F(TokenDataTest, WithoutCacheNothingIsWritten) {
  TokenDataOptions options;
  options.useCache = false;
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(corpus_, tok_, options, &error)) << error;
  EXPECT_FALSE(data.tokens().empty());
  EXPECT_FALSE(fs::exists(corpus_ + ".tokens"));
}

TEST_F(TokenDataTest, CorpusErrors) {
  TokenData data;
  std::string error;
  EXPECT_FALSE(data.load(path("missing.txt"), tok_, {}, &error));
  EXPECT_NE(error.find("corpus " + path("missing.txt") + ": cannot open"), std::string::npos)
      << error;
  writeBytes(path("empty.txt"), "");
  EXPECT_FALSE(data.load(path("empty.txt"), tok_, {}, &error));
  EXPECT_NE(error.find("corpus " + path("empty.txt") + " is empty"), std::string::npos) << error;
  writeBytes(path("blank.txt"), "\n\r\n\n");
  EXPECT_FALSE(data.load(path("blank.txt"), tok_, {}, &error));
  EXPECT_NE(error.find("has no tokens"), std::string::npos) << error;
  EXPECT_FALSE(data.load(dir_, tok_, {}, &error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
  Tokenizer none;
  EXPECT_FALSE(data.load(corpus_, none, {}, &error));
  EXPECT_NE(error.find("no tokenizer loaded"), std::string::npos) << error;
  TokenDataOptions self;
  self.cachePath = corpus_;
  std::string before = readBytes(corpus_);
  EXPECT_FALSE(data.load(corpus_, tok_, self, &error));
  EXPECT_NE(error.find("is the corpus itself"), std::string::npos) << error;
  EXPECT_EQ(readBytes(corpus_), before);
}

TEST_F(TokenDataTest, LastLineWithoutNewlineAndCrLf) {
  writeBytes(path("crlf.txt"), "the river\r\nran under a bridge");
  TokenData data;
  std::string error;
  ASSERT_TRUE(data.load(path("crlf.txt"), tok_, {}, &error)) << error;
  EXPECT_EQ(data.tokens(), expectedTokens("the river\nran under a bridge", true, false));
}

//===----------------------------------------------------------------------------------===//
// Splits and batches (no tokenizer needed)
//===----------------------------------------------------------------------------------===//

std::vector<uint32_t> iota(size_t n) {
  std::vector<uint32_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint32_t>(i);
  return v;
}

TEST(TokenDataSplitTest, LastFractionIsValidation) {
  std::vector<uint32_t> tokens = iota(1000);
  TokenSpan train, valid;
  std::string error;
  ASSERT_TRUE(splitTokens({tokens.data(), tokens.size()}, 0.1, 16, train, valid, &error))
      << error;
  EXPECT_EQ(train.size, 900u);
  EXPECT_EQ(valid.size, 100u);
  EXPECT_EQ(train.data, tokens.data());
  EXPECT_EQ(valid.data, tokens.data() + 900);
  ASSERT_TRUE(splitTokens({tokens.data(), tokens.size()}, 0, 16, train, valid, &error)) << error;
  EXPECT_EQ(train.size, 1000u);
  EXPECT_EQ(valid.size, 0u);
}

TEST(TokenDataSplitTest, Errors) {
  std::vector<uint32_t> tokens = iota(100);
  TokenSpan all{tokens.data(), tokens.size()}, train, valid;
  std::string error;
  EXPECT_FALSE(splitTokens(all, 1.0, 8, train, valid, &error));
  EXPECT_NE(error.find("validation fraction must be in [0, 1)"), std::string::npos) << error;
  EXPECT_FALSE(splitTokens(all, -0.1, 8, train, valid, &error));
  EXPECT_FALSE(splitTokens(all, 0.1, 0, train, valid, &error));
  EXPECT_NE(error.find("sequence length must be positive"), std::string::npos) << error;
  EXPECT_FALSE(splitTokens(all, 0.1, 128, train, valid, &error));
  EXPECT_NE(error.find("corpus has 100 tokens, fewer than seq+1 = 129"), std::string::npos)
      << error;
  EXPECT_FALSE(splitTokens(all, 0.05, 8, train, valid, &error));
  EXPECT_NE(error.find("validation split"), std::string::npos) << error;
  EXPECT_NE(error.find("has 5 tokens, fewer than seq+1 = 9"), std::string::npos) << error;
  EXPECT_FALSE(splitTokens(all, 0.95, 8, train, valid, &error));
  EXPECT_NE(error.find("training split has 5 tokens"), std::string::npos) << error;
}

TEST(TokenDataSamplerTest, TargetsAreTheNextTokens) {
  std::vector<uint32_t> tokens(5000);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<uint32_t>((i * 7919) % 3001);
  BatchSampler sampler;
  std::string error;
  ASSERT_TRUE(sampler.init({tokens.data(), tokens.size()}, 4, 32, 42, &error)) << error;
  EXPECT_EQ(sampler.numWindows(), 5000u - 32u);
  for (uint64_t step = 0; step < 20; ++step) {
    Batch b = sampler.get(step, 0, 0);
    ASSERT_EQ(b.batch, 4);
    ASSERT_EQ(b.seq, 32);
    ASSERT_EQ(b.inputs.size(), 128u);
    for (int64_t r = 0; r < 4; ++r) {
      uint64_t start = sampler.windowStart(step, 0, 0, static_cast<uint64_t>(r));
      ASSERT_LE(start + 32, tokens.size() - 1);
      for (int64_t t = 0; t < 32; ++t) {
        EXPECT_EQ(b.inputs[r * 32 + t], static_cast<int32_t>(tokens[start + t]));
        EXPECT_EQ(b.targets[r * 32 + t], static_cast<int32_t>(tokens[start + t + 1]));
      }
    }
  }
}

TEST(TokenDataSamplerTest, BatchesDependOnlyOnSeedStepMicroBatchAndRank) {
  std::vector<uint32_t> tokens = iota(100000);
  TokenSpan span{tokens.data(), tokens.size()};
  std::string error;
  BatchSampler a, b, other;
  ASSERT_TRUE(a.init(span, 8, 16, 1234, &error)) << error;
  ASSERT_TRUE(b.init(span, 8, 16, 1234, &error)) << error;
  ASSERT_TRUE(other.init(span, 8, 16, 1235, &error)) << error;
  // An uninterrupted run draws steps 0..99; a run resumed at step 60 draws 60..99 in a fresh
  // sampler, and sees the same batches.
  std::vector<Batch> uninterrupted;
  for (uint64_t s = 0; s < 100; ++s)
    uninterrupted.push_back(a.get(s, 0, 0));
  for (uint64_t s = 60; s < 100; ++s) {
    Batch resumed = b.get(s, 0, 0);
    EXPECT_EQ(resumed.inputs, uninterrupted[s].inputs) << s;
    EXPECT_EQ(resumed.targets, uninterrupted[s].targets) << s;
  }
  // Asking again, in any order, changes nothing.
  EXPECT_EQ(a.get(7, 0, 0).inputs, uninterrupted[7].inputs);
  // Every coordinate matters.
  Batch base = a.get(5, 1, 2);
  EXPECT_NE(a.get(6, 1, 2).inputs, base.inputs);
  EXPECT_NE(a.get(5, 0, 2).inputs, base.inputs);
  EXPECT_NE(a.get(5, 1, 3).inputs, base.inputs);
  EXPECT_NE(other.get(5, 1, 2).inputs, base.inputs);
  // Rows of one batch are different windows.
  std::set<uint64_t> starts;
  for (uint64_t r = 0; r < 8; ++r)
    starts.insert(a.windowStart(5, 1, 2, r));
  EXPECT_EQ(starts.size(), 8u);
  // fill() writes the same batch into caller storage.
  std::vector<int32_t> in(128), tg(128);
  a.fill(5, 1, 2, in.data(), tg.data());
  EXPECT_EQ(in, base.inputs);
  EXPECT_EQ(tg, base.targets);
}

TEST(TokenDataSamplerTest, WindowsCoverTheSpanUniformly) {
  // 50 windows, 20000 draws: each window expected 400 times; the counter hash must not
  // leave any out or favour some grossly.
  std::vector<uint32_t> tokens = iota(58);
  BatchSampler sampler;
  std::string error;
  ASSERT_TRUE(sampler.init({tokens.data(), tokens.size()}, 1, 8, 9, &error)) << error;
  ASSERT_EQ(sampler.numWindows(), 50u);
  std::vector<int> counts(50, 0);
  for (uint64_t s = 0; s < 20000; ++s)
    ++counts[sampler.windowStart(s, 0, 0, 0)];
  for (int c : counts) {
    EXPECT_GT(c, 300);
    EXPECT_LT(c, 500);
  }
  // The smallest valid span has exactly one window.
  std::vector<uint32_t> tiny = iota(9);
  ASSERT_TRUE(sampler.init({tiny.data(), tiny.size()}, 3, 8, 9, &error)) << error;
  Batch b = sampler.get(12345, 6, 7);
  for (int64_t r = 0; r < 3; ++r)
    EXPECT_EQ(b.targets[r * 8 + 7], 8);
}

TEST(TokenDataSamplerTest, Errors) {
  std::vector<uint32_t> tokens = iota(5);
  BatchSampler sampler;
  std::string error;
  EXPECT_FALSE(sampler.init({tokens.data(), tokens.size()}, 2, 8, 0, &error));
  EXPECT_NE(error.find("the training data has 5 tokens, fewer than seq+1 = 9"),
            std::string::npos)
      << error;
  EXPECT_FALSE(sampler.init({tokens.data(), tokens.size()}, 0, 2, 0, &error));
  EXPECT_NE(error.find("batch size must be positive"), std::string::npos) << error;
  EXPECT_FALSE(sampler.init({tokens.data(), tokens.size()}, 2, -1, 0, &error));
  EXPECT_NE(error.find("sequence length must be positive"), std::string::npos) << error;
  EXPECT_FALSE(sampler.init({nullptr, 100}, 2, 4, 0, &error));
  EXPECT_NE(error.find("no data"), std::string::npos) << error;
}

TEST(TokenDataValidationTest, FixedNonOverlappingWindows) {
  std::vector<uint32_t> tokens = iota(1000);
  ValidationBatches valid;
  std::string error;
  ASSERT_TRUE(valid.init({tokens.data(), tokens.size()}, 4, 10, 0, &error)) << error;
  EXPECT_EQ(valid.numWindows(), 99u); // (1000 - 1) / 10
  EXPECT_EQ(valid.size(), 25u);       // ceil(99 / 4)
  std::vector<int> seen(99, 0);
  for (uint64_t k = 0; k < valid.size(); ++k) {
    Batch b = valid.get(k);
    for (int64_t r = 0; r < 4; ++r) {
      uint64_t w = valid.windowOf(k, static_cast<uint64_t>(r));
      ++seen[w];
      for (int64_t t = 0; t < 10; ++t) {
        EXPECT_EQ(b.inputs[r * 10 + t], static_cast<int32_t>(w * 10 + t));
        EXPECT_EQ(b.targets[r * 10 + t], static_cast<int32_t>(w * 10 + t + 1));
      }
    }
  }
  // Every window once, and the last batch's one spare row wraps to window 0.
  for (size_t w = 0; w < seen.size(); ++w)
    EXPECT_EQ(seen[w], w == 0 ? 2 : 1) << w;
  // The set is fixed.
  ValidationBatches again;
  ASSERT_TRUE(again.init({tokens.data(), tokens.size()}, 4, 10, 0, &error)) << error;
  for (uint64_t k = 0; k < valid.size(); ++k)
    EXPECT_EQ(again.get(k).inputs, valid.get(k).inputs);
  // An index out of range wraps instead of reading outside the split.
  EXPECT_EQ(valid.get(valid.size() + 3).inputs, valid.get(3).inputs);
}

TEST(TokenDataValidationTest, LimitedSetIsSpreadOverTheSplit) {
  std::vector<uint32_t> tokens = iota(10001);
  ValidationBatches valid;
  std::string error;
  ASSERT_TRUE(valid.init({tokens.data(), tokens.size()}, 2, 10, 3, &error)) << error;
  EXPECT_EQ(valid.numWindows(), 1000u);
  EXPECT_EQ(valid.size(), 3u);
  std::vector<uint64_t> windows;
  for (uint64_t k = 0; k < 3; ++k)
    for (uint64_t r = 0; r < 2; ++r)
      windows.push_back(valid.windowOf(k, r));
  EXPECT_EQ(windows, (std::vector<uint64_t>{0, 166, 333, 500, 666, 833}));
}

TEST(TokenDataValidationTest, Errors) {
  std::vector<uint32_t> tokens = iota(8);
  ValidationBatches valid;
  std::string error;
  EXPECT_FALSE(valid.init({tokens.data(), tokens.size()}, 2, 8, 0, &error));
  EXPECT_NE(error.find("the validation split has 8 tokens, fewer than seq+1 = 9"),
            std::string::npos)
      << error;
  EXPECT_FALSE(valid.init({tokens.data(), tokens.size()}, 0, 4, 0, &error));
  EXPECT_NE(error.find("batch size must be positive"), std::string::npos) << error;
  ValidationBatches empty;
  EXPECT_EQ(empty.size(), 0u);
  std::vector<int32_t> in(4, -1), tg(4, -1);
  empty.fill(0, in.data(), tg.data()); // no batches: writes nothing, does not crash
  EXPECT_EQ(in, std::vector<int32_t>(4, -1));
}

} // namespace
