//===- Tokenizer.cpp - `llamac tokenizer` ------------------------------------------===//
//
//   llamac tokenizer train corpus.txt --vocab N -o tok.model
//   llamac tokenizer encode --model tok.model [--bos] TEXT...
//   llamac tokenizer decode --model tok.model ID...
//
// Thin over runtime/Tokenizer (SentencePiece BPE with LLaMA's options).
//
//===----------------------------------------------------------------------------------===//

#include "runtime/Tokenizer.h"
#include "tools/llamac/Driver.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace llamac;
namespace cl = llvm::cl;

cl::SubCommand &llamac::driver::tokenizerCommand() {
  static cl::SubCommand command(
      "tokenizer", "Train a SentencePiece BPE tokenizer with LLaMA's options, or encode and "
                   "decode with one (actions: train, encode, decode)");
  return command;
}

static cl::list<std::string> words(cl::Positional, cl::OneOrMore,
                                   cl::desc("<train|encode|decode> <corpus | text | ids>..."),
                                   cl::sub(driver::tokenizerCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<int> vocab("vocab", cl::desc("Vocabulary size to train (LLaMA: 32000)"),
                          cl::init(0), cl::sub(driver::tokenizerCommand()),
                          cl::cat(driver::optionCategory()));
static cl::opt<std::string> output("o", cl::desc("Where to write the trained model"),
                                   cl::value_desc("file"), cl::sub(driver::tokenizerCommand()),
                                   cl::cat(driver::optionCategory()));
static cl::opt<std::string> modelFile("model", cl::desc("Tokenizer model to encode/decode with"),
                                      cl::value_desc("file"),
                                      cl::sub(driver::tokenizerCommand()),
                                      cl::cat(driver::optionCategory()));
static cl::opt<bool> addBos("bos", cl::desc("Prepend the beginning-of-sequence id"),
                            cl::sub(driver::tokenizerCommand()),
                            cl::cat(driver::optionCategory()));

static int train() {
  if (words.size() != 2)
    return driver::error("usage: llamac tokenizer train <corpus.txt> --vocab N -o <file>");
  if (output.empty())
    return driver::error("tokenizer train needs -o <file>");
  if (vocab < kMinTrainVocabSize || vocab > kMaxTrainVocabSize)
    return driver::error("--vocab must be between " + llvm::Twine(kMinTrainVocabSize) +
                         " and " + llvm::Twine(kMaxTrainVocabSize) + ", got " +
                         llvm::Twine(int(vocab)));
  std::string err;
  if (!trainTokenizer(words[1], vocab, output, &err))
    return driver::error(err);
  Tokenizer tok;
  if (!tok.load(output, &err))
    return driver::error(err);
  llvm::outs() << "trained " << output << ": " << tok.vocabSize() << " pieces (bos "
               << tok.bosId() << ", eos " << tok.eosId() << ", unk " << tok.unkId() << ")\n";
  return 0;
}

static bool loadModel(Tokenizer &tok) {
  if (modelFile.empty()) {
    driver::error("tokenizer " + words[0] + " needs --model <file>");
    return false;
  }
  std::string err;
  if (!tok.load(modelFile, &err)) {
    driver::error(err);
    return false;
  }
  return true;
}

static int encode() {
  Tokenizer tok;
  if (!loadModel(tok))
    return 1;
  std::string text = llvm::join(std::vector<std::string>(words.begin() + 1, words.end()), " ");
  std::vector<int32_t> ids;
  std::string err;
  if (!tok.encode(text, addBos, ids, &err))
    return driver::error(err);
  for (size_t i = 0; i < ids.size(); ++i)
    llvm::outs() << (i ? " " : "") << ids[i];
  llvm::outs() << "\n";
  return 0;
}

static int decode() {
  Tokenizer tok;
  if (!loadModel(tok))
    return 1;
  std::vector<int32_t> ids;
  for (size_t i = 1; i < words.size(); ++i) {
    int32_t id;
    if (llvm::StringRef(words[i]).getAsInteger(10, id))
      return driver::error("'" + words[i] + "' is not a token id");
    ids.push_back(id);
  }
  std::string text, err;
  if (!tok.decode(ids, text, &err))
    return driver::error(err);
  llvm::outs() << text << "\n";
  return 0;
}

int llamac::driver::runTokenizer() {
  const std::string &action = words[0];
  if (action == "train")
    return train();
  if (action == "encode")
    return encode();
  if (action == "decode")
    return decode();
  return error("unknown tokenizer action '" + action + "' (train, encode or decode)");
}
