//===- TokenizerTest.cpp - SentencePiece loading, encoding and training -------------===//
//
// Compatibility with Meta's LLaMA tokenizer (known ids, special ids, round trips; skipped
// when ../shared/data/llama-tokenizer.model is absent), training on a corpus generated here
// (determinism, split digits, byte fallback, round trips), and one test per error: missing,
// empty and corrupt models, bad ids, and corpora or vocabularies training must refuse.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using namespace llamac;
namespace fs = std::filesystem;

namespace {

std::string llamaTokenizerPath() {
  return std::string(LLAMAC_SOURCE_DIR) + "/../shared/data/llama-tokenizer.model";
}

void writeBytes(const std::string &file, const std::string &bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << file;
}

std::string readBytes(const std::string &file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A deterministic English-like corpus with numbers and punctuation: `lines` lines.
std::string makeCorpus(int lines, uint32_t seed = 1) {
  static const char *const words[] = {
      "the",    "of",     "and",    "to",      "in",     "a",      "is",     "that",
      "for",    "it",     "as",     "was",     "with",   "be",     "by",     "on",
      "not",    "he",     "this",   "are",     "or",     "his",    "from",   "at",
      "which",  "but",    "have",   "an",      "had",    "they",   "you",    "were",
      "their",  "one",    "all",    "we",      "can",    "her",    "has",    "there",
      "been",   "if",     "more",   "when",    "will",   "would",  "who",    "so",
      "model",  "train",  "token",  "layer",   "weight", "loss",   "step",   "batch",
      "river",  "garden", "light",  "morning", "water",  "stone",  "letter", "number",
      "Llama",  "Alpaca", "naïve",  "café",    "résumé", "über",   "city",   "year"};
  constexpr size_t numWords = sizeof(words) / sizeof(words[0]);
  uint64_t state = seed;
  auto next = [&]() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  std::string text;
  for (int l = 0; l < lines; ++l) {
    int n = 4 + static_cast<int>(next() % 12);
    for (int w = 0; w < n; ++w) {
      if (w)
        text += ' ';
      if (next() % 9 == 0)
        text += std::to_string(next() % 100000);
      else
        text += words[next() % numWords];
    }
    text += next() % 3 ? "." : ", said the text.";
    text += '\n';
  }
  return text;
}

class TokenizerTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    if (!tokenizerBackendAvailable(&why))
      GTEST_SKIP() << "SentencePiece cannot be loaded here: " << why;
    std::string pattern = ::testing::TempDir() + "tokenizer-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
  }
  void TearDown() override {
    if (dir_.empty())
      return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string &name) const { return dir_ + "/" + name; }

  /// Trains a small tokenizer on a generated corpus, once per test.
  std::string trainSmall(int32_t vocab = 400) {
    std::string corpus = path("corpus.txt");
    writeBytes(corpus, makeCorpus(1500));
    std::string model = path("small.model");
    std::string error;
    EXPECT_TRUE(trainTokenizer(corpus, vocab, model, &error)) << error;
    return model;
  }

  std::string dir_;
};

class TokenizerLlamaTest : public TokenizerTest {
protected:
  void SetUp() override {
    TokenizerTest::SetUp();
    if (IsSkipped())
      return;
    if (!fs::exists(llamaTokenizerPath()))
      GTEST_SKIP() << "the LLaMA tokenizer is not at " << llamaTokenizerPath();
    std::string error;
    ASSERT_TRUE(tok_.load(llamaTokenizerPath(), &error)) << error;
  }
  Tokenizer tok_;
};

std::vector<int32_t> encodeOrDie(const Tokenizer &tok, const std::string &text, bool bos) {
  std::vector<int32_t> ids;
  std::string error;
  EXPECT_TRUE(tok.encode(text, bos, ids, &error)) << error;
  return ids;
}

std::string decodeOrDie(const Tokenizer &tok, const std::vector<int32_t> &ids) {
  std::string text, error;
  EXPECT_TRUE(tok.decode(ids, text, &error)) << error;
  return text;
}

//===----------------------------------------------------------------------------------===//
// The LLaMA tokenizer
//===----------------------------------------------------------------------------------===//

TEST_F(TokenizerLlamaTest, KnownIds) {
  std::vector<int32_t> expected = {15043, 3186,  29892, 29871, 29896, 29906,
                                   29941, 29946, 1055,  30085, 345};
  EXPECT_EQ(encodeOrDie(tok_, "Hello world, 1234 naïve", false), expected);
  std::vector<int32_t> withBos = expected;
  withBos.insert(withBos.begin(), 1);
  EXPECT_EQ(encodeOrDie(tok_, "Hello world, 1234 naïve", true), withBos);
  EXPECT_EQ(encodeOrDie(tok_, "", false), std::vector<int32_t>{});
  EXPECT_EQ(encodeOrDie(tok_, "", true), std::vector<int32_t>{1});
}

TEST_F(TokenizerLlamaTest, SpecialIdsAndVocabulary) {
  EXPECT_EQ(tok_.vocabSize(), 32000);
  EXPECT_EQ(tok_.bosId(), 1);
  EXPECT_EQ(tok_.eosId(), 2);
  EXPECT_EQ(tok_.unkId(), 0);
  EXPECT_EQ(tok_.padId(), -1);
  EXPECT_EQ(tok_.piece(15043), "\xe2\x96\x81Hello"); // "▁Hello"
  EXPECT_EQ(tok_.piece(1), "<s>");
  EXPECT_EQ(tok_.piece(2), "</s>");
  EXPECT_EQ(tok_.piece(13), "<0x0A>");
  EXPECT_EQ(tok_.pieceKind(0), Tokenizer::PieceKind::Unknown);
  EXPECT_EQ(tok_.pieceKind(1), Tokenizer::PieceKind::Control);
  EXPECT_EQ(tok_.pieceKind(13), Tokenizer::PieceKind::Byte);
  EXPECT_EQ(tok_.pieceKind(15043), Tokenizer::PieceKind::Normal);
  // Out of range: no piece, never a crash.
  EXPECT_EQ(tok_.piece(-1), "");
  EXPECT_EQ(tok_.piece(32000), "");
  EXPECT_EQ(tok_.pieceKind(1 << 30), Tokenizer::PieceKind::Unused);
  EXPECT_NE(tok_.checksum(), 0u);
  EXPECT_EQ(tok_.name(), llamaTokenizerPath());
}

TEST_F(TokenizerLlamaTest, RoundTrips) {
  for (std::string text :
       {"Hello world", "naïve café, résumé", "数字 0123456789 and 3.14159",
        "日本語のテキストと한국어", "a llama 🦙 emoji", "tabs\tand\nnewlines\n",
        "  two leading spaces", "trailing space ", "x"}) {
    std::vector<int32_t> ids = encodeOrDie(tok_, text, true);
    EXPECT_EQ(decodeOrDie(tok_, ids), text);
  }
  // Digits are split one per piece.
  std::vector<int32_t> digits = encodeOrDie(tok_, "2024", false);
  ASSERT_EQ(digits.size(), 5u); // "▁" then four digits
  for (size_t i = 1; i < digits.size(); ++i)
    EXPECT_EQ(tok_.piece(digits[i]).size(), 1u);
  // BOS and EOS decode to nothing.
  EXPECT_EQ(decodeOrDie(tok_, {1, 15043, 2}), "Hello");
}

TEST_F(TokenizerLlamaTest, DecodeRejectsIdsOutsideTheVocabulary) {
  std::string text = "unchanged", error;
  EXPECT_FALSE(tok_.decode({15043, 32000}, text, &error));
  EXPECT_NE(error.find("token id 32000 at position 1"), std::string::npos) << error;
  EXPECT_NE(error.find("[0, 32000)"), std::string::npos) << error;
  EXPECT_FALSE(tok_.decode({-5}, text, &error));
  EXPECT_NE(error.find("token id -5 at position 0"), std::string::npos) << error;
}

TEST_F(TokenizerLlamaTest, TruncatedModelIsRejected) {
  std::string bytes = readBytes(llamaTokenizerPath());
  for (size_t cut : {size_t(1), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    std::string file = path("cut.model");
    writeBytes(file, bytes.substr(0, cut));
    Tokenizer t;
    std::string error;
    EXPECT_FALSE(t.load(file, &error)) << cut;
    EXPECT_FALSE(t.isLoaded());
    EXPECT_NE(error.find(file), std::string::npos) << error;
    EXPECT_NE(error.find("not a SentencePiece model"), std::string::npos) << error;
  }
}

TEST_F(TokenizerLlamaTest, EncodingIsThreadSafe) {
  // Encode is const and SentencePiece's processor is thread-safe for it.
  std::vector<std::vector<int32_t>> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k)
        results[i] = encodeOrDie(tok_, "Hello world, 1234 naïve", false);
    });
  for (auto &t : threads)
    t.join();
  for (const auto &r : results)
    EXPECT_EQ(r, results[0]);
}

//===----------------------------------------------------------------------------------===//
// Loading errors
//===----------------------------------------------------------------------------------===//

TEST_F(TokenizerTest, MissingModelIsNamed) {
  Tokenizer t;
  std::string error;
  EXPECT_FALSE(t.load(path("nope.model"), &error));
  EXPECT_NE(error.find(path("nope.model")), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST_F(TokenizerTest, DirectoryEmptyAndGarbageModelsAreRejected) {
  Tokenizer t;
  std::string error;
  EXPECT_FALSE(t.load(dir_, &error));
  EXPECT_NE(error.find("directory"), std::string::npos) << error;

  writeBytes(path("empty.model"), "");
  EXPECT_FALSE(t.load(path("empty.model"), &error));
  EXPECT_NE(error.find(path("empty.model") + ": empty file"), std::string::npos) << error;

  writeBytes(path("text.model"), "this is a text file, not a model\n");
  EXPECT_FALSE(t.load(path("text.model"), &error));
  EXPECT_NE(error.find(path("text.model")), std::string::npos) << error;
  EXPECT_NE(error.find("not a SentencePiece model"), std::string::npos) << error;

  // Valid protobuf (an empty ModelProto is all defaults) but no usable model.
  std::string bytes("\x08\x01", 2);
  EXPECT_FALSE(t.loadFromBytes(bytes, "tiny", &error));
  EXPECT_NE(error.find("tiny: "), std::string::npos) << error;
  EXPECT_FALSE(t.isLoaded());
}

TEST_F(TokenizerTest, UnloadedTokenizerReportsErrors) {
  Tokenizer t;
  std::vector<int32_t> ids;
  std::string text, error;
  EXPECT_FALSE(t.encode("hello", false, ids, &error));
  EXPECT_NE(error.find("no tokenizer loaded"), std::string::npos) << error;
  EXPECT_FALSE(t.decode({1, 2}, text, &error));
  EXPECT_NE(error.find("no tokenizer loaded"), std::string::npos) << error;
  EXPECT_EQ(t.vocabSize(), 0);
  EXPECT_EQ(t.piece(0), "");
}

TEST_F(TokenizerTest, FailedLoadEmptiesALoadedTokenizer) {
  std::string model = trainSmall();
  Tokenizer t;
  std::string error;
  ASSERT_TRUE(t.load(model, &error)) << error;
  EXPECT_FALSE(t.load(path("missing.model"), &error));
  EXPECT_FALSE(t.isLoaded());
  EXPECT_EQ(t.vocabSize(), 0);
}

TEST_F(TokenizerTest, MoveTransfersTheModel) {
  std::string model = trainSmall();
  Tokenizer a;
  std::string error;
  ASSERT_TRUE(a.load(model, &error)) << error;
  std::vector<int32_t> ids = encodeOrDie(a, "the river", false);
  Tokenizer b(std::move(a));
  EXPECT_FALSE(a.isLoaded());
  EXPECT_EQ(encodeOrDie(b, "the river", false), ids);
  Tokenizer c;
  c = std::move(b);
  EXPECT_EQ(encodeOrDie(c, "the river", false), ids);
  EXPECT_EQ(c.vocabSize(), 400);
}

//===----------------------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------------------===//

TEST_F(TokenizerTest, TrainsLlamaStyleModel) {
  std::string model = trainSmall(400);
  Tokenizer t;
  std::string error;
  ASSERT_TRUE(t.load(model, &error)) << error;
  EXPECT_EQ(t.vocabSize(), 400);
  EXPECT_EQ(t.unkId(), 0);
  EXPECT_EQ(t.bosId(), 1);
  EXPECT_EQ(t.eosId(), 2);
  EXPECT_EQ(t.padId(), -1);
  EXPECT_EQ(t.piece(1), "<s>");
  // 256 byte pieces follow the three special ones.
  EXPECT_EQ(t.piece(3), "<0x00>");
  EXPECT_EQ(t.pieceKind(258), Tokenizer::PieceKind::Byte);
  EXPECT_EQ(t.pieceKind(259), Tokenizer::PieceKind::Normal);

  // Digits are split: every digit is its own piece.
  std::vector<int32_t> ids = encodeOrDie(t, "year 31415", false);
  int digitPieces = 0;
  for (int32_t id : ids) {
    std::string p = t.piece(id);
    if (p.find_first_of("0123456789") != std::string::npos) {
      EXPECT_EQ(p.size(), 1u) << "piece '" << p << "' holds more than one digit";
      ++digitPieces;
    }
  }
  EXPECT_EQ(digitPieces, 5);

  // Byte fallback: characters never seen in training come back exactly.
  for (std::string text : {"日本", "the 🦙 garden", "Ωmega ∑", "plain words from the corpus",
                           "  spaced  out  ", "line\nbreak"}) {
    std::vector<int32_t> enc = encodeOrDie(t, text, true);
    EXPECT_EQ(decodeOrDie(t, enc), text);
  }
  std::vector<int32_t> cjk = encodeOrDie(t, "日", false);
  int bytes = 0;
  for (int32_t id : cjk)
    bytes += t.pieceKind(id) == Tokenizer::PieceKind::Byte;
  EXPECT_EQ(bytes, 3) << "U+65E5 is three UTF-8 bytes, each a byte piece";
  EXPECT_TRUE(std::find(cjk.begin(), cjk.end(), t.unkId()) == cjk.end());
}

TEST_F(TokenizerTest, TrainingIsDeterministic) {
  std::string corpus = path("corpus.txt");
  writeBytes(corpus, makeCorpus(1200, 7));
  std::string error;
  ASSERT_TRUE(trainTokenizer(corpus, 350, path("a.model"), &error)) << error;
  ASSERT_TRUE(trainTokenizer(corpus, 350, path("b.model"), &error)) << error;
  std::string a = readBytes(path("a.model")), b = readBytes(path("b.model"));
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  // No temporary left beside the output.
  int files = 0;
  for (const auto &entry : fs::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 3);
}

TEST_F(TokenizerTest, LargeCorpusIsSampledInStripes) {
  // A corpus four times the sample bound: training reads 64 stripes of whole lines spread
  // over the file, deterministically, and round trips text from its end.
  std::string corpus = path("big.txt");
  std::string text = makeCorpus(3000, 3);
  writeBytes(corpus, text);
  TokenizerTrainOptions options;
  options.maxCorpusBytes = text.size() / 4;
  std::string error;
  ASSERT_TRUE(trainTokenizer(corpus, 380, path("a.model"), &error, options)) << error;
  ASSERT_TRUE(trainTokenizer(corpus, 380, path("b.model"), &error, options)) << error;
  EXPECT_EQ(readBytes(path("a.model")), readBytes(path("b.model")));
  Tokenizer t;
  ASSERT_TRUE(t.load(path("a.model"), &error)) << error;
  std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
  last.pop_back();
  EXPECT_EQ(decodeOrDie(t, encodeOrDie(t, last, false)), last);
}

TEST_F(TokenizerTest, TrainingRejectsMissingAndEmptyCorpora) {
  std::string error;
  EXPECT_FALSE(trainTokenizer(path("missing.txt"), 400, path("m.model"), &error));
  EXPECT_NE(error.find("corpus " + path("missing.txt")), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;

  writeBytes(path("empty.txt"), "");
  EXPECT_FALSE(trainTokenizer(path("empty.txt"), 400, path("m.model"), &error));
  EXPECT_NE(error.find("the file is empty"), std::string::npos) << error;

  writeBytes(path("blank.txt"), "\n\n\r\n\n");
  EXPECT_FALSE(trainTokenizer(path("blank.txt"), 400, path("m.model"), &error));
  EXPECT_NE(error.find("no non-empty line"), std::string::npos) << error;

  writeBytes(path("long.txt"), std::string(100, 'x') + "\n");
  TokenizerTrainOptions options;
  options.maxLineBytes = 50;
  EXPECT_FALSE(trainTokenizer(path("long.txt"), 400, path("m.model"), &error, options));
  EXPECT_NE(error.find("1 lines longer than 50 bytes"), std::string::npos) << error;

  EXPECT_FALSE(trainTokenizer(dir_, 400, path("m.model"), &error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(path("m.model")));
}

TEST_F(TokenizerTest, TrainingRejectsVocabulariesThatDoNotFit) {
  std::string corpus = path("corpus.txt");
  writeBytes(corpus, makeCorpus(200));
  std::string error;
  // Below the byte pieces and special pieces: refused before SentencePiece runs.
  EXPECT_FALSE(trainTokenizer(corpus, 100, path("m.model"), &error));
  EXPECT_NE(error.find("too small"), std::string::npos) << error;
  EXPECT_NE(error.find("at least 260"), std::string::npos) << error;
  // Above the byte pieces, but not enough for the corpus's characters.
  EXPECT_FALSE(trainTokenizer(corpus, 265, path("m.model"), &error));
  EXPECT_NE(error.find("Vocabulary size is smaller than required_chars"), std::string::npos)
      << error;
  // More pieces than the corpus can provide.
  EXPECT_FALSE(trainTokenizer(corpus, 20000, path("m.model"), &error));
  EXPECT_NE(error.find("Vocabulary size too high"), std::string::npos) << error;
  EXPECT_EQ(error.find(".cc("), std::string::npos) << "source locations are stripped: " << error;
  EXPECT_FALSE(trainTokenizer(corpus, kMaxTrainVocabSize + 1, path("m.model"), &error));
  EXPECT_NE(error.find("larger than"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(path("m.model")));
}

TEST_F(TokenizerTest, TrainingRejectsBadOptions) {
  std::string corpus = path("corpus.txt");
  writeBytes(corpus, makeCorpus(100));
  std::string error;
  TokenizerTrainOptions options;
  options.characterCoverage = 1.5;
  EXPECT_FALSE(trainTokenizer(corpus, 400, path("m.model"), &error, options));
  EXPECT_NE(error.find("character coverage"), std::string::npos) << error;
  options = {};
  options.maxCorpusBytes = 0;
  EXPECT_FALSE(trainTokenizer(corpus, 400, path("m.model"), &error, options));
  EXPECT_NE(error.find("maxCorpusBytes"), std::string::npos) << error;
}

TEST_F(TokenizerTest, FailedTrainingLeavesTheOutputUntouched) {
  std::string corpus = path("corpus.txt");
  writeBytes(corpus, makeCorpus(200));
  std::string out = path("existing.model");
  writeBytes(out, "precious");
  std::string error;
  EXPECT_FALSE(trainTokenizer(corpus, 20000, out, &error));
  EXPECT_EQ(readBytes(out), "precious");
  // The output cannot be the corpus, nor in a missing directory.
  EXPECT_FALSE(trainTokenizer(corpus, 400, corpus, &error));
  EXPECT_NE(error.find("would overwrite the corpus"), std::string::npos) << error;
  EXPECT_EQ(readBytes(corpus), makeCorpus(200));
  EXPECT_FALSE(trainTokenizer(corpus, 400, path("no/such/dir/m.model"), &error));
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
  // A successful training replaces the file.
  EXPECT_TRUE(trainTokenizer(corpus, 300, out, &error)) << error;
  Tokenizer t;
  EXPECT_TRUE(t.load(out, &error)) << error;
  EXPECT_EQ(t.vocabSize(), 300);
}

} // namespace
