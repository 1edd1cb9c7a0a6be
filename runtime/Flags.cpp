//===- Flags.cpp - command-line flags for the generated programs' drivers -----------===//
//
// Numbers are parsed with std::from_chars over the whole argument, so "12abc", "1e3" for an
// integer, "" and out-of-range values are errors rather than silently truncated.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Flags.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace llamac::rt {

namespace {

bool fail(std::string *error, std::string message) {
  if (error)
    *error = std::move(message);
  return false;
}

std::string formatDouble(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

[[noreturn]] void misuse(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "llamac flags: %.*s '%.*s'\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

} // namespace

FlagParser::FlagParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

FlagParser::Flag &FlagParser::declare(std::string name, Kind kind, std::string help) {
  if (byName_.count(name) || name == "help")
    misuse("flag declared twice", name);
  Flag flag;
  flag.name = name;
  flag.kind = kind;
  flag.help = std::move(help);
  flag.section = section_;
  byName_.emplace(std::move(name), flags_.size());
  flags_.push_back(std::move(flag));
  return flags_.back();
}

void FlagParser::addString(std::string name, std::string defaultValue, std::string help,
                           std::string valueName) {
  Flag &f = declare(std::move(name), Kind::String, std::move(help));
  f.valueName = std::move(valueName);
  f.defaultText = defaultValue;
  f.stringValue = std::move(defaultValue);
}

void FlagParser::addInt(std::string name, int64_t defaultValue, std::string help, int64_t min,
                        int64_t max) {
  Flag &f = declare(std::move(name), Kind::Int, std::move(help));
  f.valueName = "N";
  f.intValue = defaultValue;
  f.intMin = min;
  f.intMax = max;
  f.defaultText = std::to_string(defaultValue);
}

void FlagParser::addDouble(std::string name, double defaultValue, std::string help, double min,
                           double max) {
  Flag &f = declare(std::move(name), Kind::Double, std::move(help));
  f.valueName = "X";
  f.doubleValue = defaultValue;
  f.doubleMin = min;
  f.doubleMax = max;
  f.defaultText = formatDouble(defaultValue);
}

void FlagParser::addChoice(std::string name, std::string defaultValue,
                           std::vector<std::string> choices, std::string help) {
  Flag &f = declare(std::move(name), Kind::Choice, std::move(help));
  std::string joined;
  for (const std::string &c : choices)
    joined += (joined.empty() ? "" : "|") + c;
  f.valueName = joined;
  f.choices = std::move(choices);
  f.defaultText = defaultValue;
  f.stringValue = std::move(defaultValue);
}

void FlagParser::addSwitch(std::string name, std::string help) {
  declare(std::move(name), Kind::Switch, std::move(help));
}

void FlagParser::addAlias(char shortName, std::string name) {
  auto it = byName_.find(name);
  if (it == byName_.end())
    misuse("alias of an undeclared flag", name);
  if (shortName == 'h' || byAlias_.count(shortName))
    misuse("alias declared twice for", name);
  byAlias_[shortName] = it->second;
  flags_[it->second].alias = shortName;
}

void FlagParser::addSection(std::string title) { section_ = std::move(title); }

void FlagParser::setDefaultText(std::string_view name, std::string text) {
  auto it = byName_.find(name);
  if (it == byName_.end())
    misuse("undeclared flag", name);
  flags_[it->second].defaultText = std::move(text);
}

bool FlagParser::setValue(Flag &flag, const std::string &value, std::string *error) {
  const std::string spelled = "--" + flag.name;
  const char *begin = value.data(), *end = value.data() + value.size();
  switch (flag.kind) {
  case Kind::String:
    flag.stringValue = value;
    return true;
  case Kind::Choice:
    for (const std::string &c : flag.choices)
      if (c == value) {
        flag.stringValue = value;
        return true;
      }
    return fail(error, spelled + ": '" + value + "' is not one of " + flag.valueName);
  case Kind::Switch:
    if (value == "true" || value == "1") {
      flag.switchValue = true;
      return true;
    }
    if (value == "false" || value == "0") {
      flag.switchValue = false;
      return true;
    }
    return fail(error, spelled + " takes no value (or true/false), got '" + value + "'");
  case Kind::Int: {
    int64_t v = 0;
    // from_chars rejects a leading '+'; accept it, people write it.
    const char *p = (begin != end && *begin == '+') ? begin + 1 : begin;
    auto [ptr, ec] = std::from_chars(p, end, v);
    if (value.empty() || ec == std::errc::invalid_argument || ptr != end)
      return fail(error, spelled + ": '" + value + "' is not an integer");
    if (ec == std::errc::result_out_of_range)
      return fail(error, spelled + ": '" + value + "' is out of range");
    if (v < flag.intMin)
      return fail(error,
                  spelled + ": must be at least " + std::to_string(flag.intMin) + ", got " + value);
    if (v > flag.intMax)
      return fail(error,
                  spelled + ": must be at most " + std::to_string(flag.intMax) + ", got " + value);
    flag.intValue = v;
    return true;
  }
  case Kind::Double: {
    // strtod accepts hex floats, inf and nan, which from_chars for double may not on older
    // libstdc++; non-finite values are then rejected explicitly.
    char *stop = nullptr;
    double v = value.empty() ? 0 : std::strtod(value.c_str(), &stop);
    if (value.empty() || stop != value.c_str() + value.size())
      return fail(error, spelled + ": '" + value + "' is not a number");
    if (!std::isfinite(v))
      return fail(error, spelled + ": '" + value + "' is not a finite number");
    if (v < flag.doubleMin)
      return fail(error, spelled + ": must be at least " + formatDouble(flag.doubleMin) + ", got " +
                             value);
    if (v > flag.doubleMax)
      return fail(error,
                  spelled + ": must be at most " + formatDouble(flag.doubleMax) + ", got " + value);
    flag.doubleValue = v;
    return true;
  }
  }
  return false;
}

FlagParser::Result FlagParser::parse(int argc, char **argv, std::string *error) {
  // --help wins over everything, so that a broken command line can still ask for usage.
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h")
      return Result::Help;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    Flag *flag = nullptr;
    std::string value;
    bool hasInlineValue = false;
    if (arg.size() > 2 && arg[0] == '-' && arg[1] == '-') {
      std::string name = arg.substr(2);
      if (size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
        hasInlineValue = true;
      }
      auto it = byName_.find(name);
      if (it == byName_.end()) {
        fail(error, "unknown flag '--" + name + "' (see --help)");
        return Result::Error;
      }
      flag = &flags_[it->second];
    } else if (arg.size() == 2 && arg[0] == '-' && byAlias_.count(arg[1])) {
      flag = &flags_[byAlias_[arg[1]]];
    } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
      fail(error, "unknown flag '" + arg + "' (see --help)");
      return Result::Error;
    } else {
      fail(error, "unexpected argument '" + arg + "' (flags are --name value; see --help)");
      return Result::Error;
    }

    flag->given = true;
    if (flag->kind == Kind::Switch && !hasInlineValue) {
      flag->switchValue = true;
      continue;
    }
    if (!hasInlineValue) {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).substr(0, 2) == "--") {
        fail(error, "--" + flag->name + ": missing value");
        return Result::Error;
      }
      value = argv[++i];
    }
    if (!setValue(*flag, value, error))
      return Result::Error;
  }
  return Result::Ok;
}

const FlagParser::Flag &FlagParser::lookup(std::string_view name, Kind kind) const {
  auto it = byName_.find(name);
  if (it == byName_.end())
    misuse("undeclared flag", name);
  const Flag &f = flags_[it->second];
  bool stringLike = kind == Kind::String || kind == Kind::Choice;
  bool isStringLike = f.kind == Kind::String || f.kind == Kind::Choice;
  if (stringLike ? !isStringLike : f.kind != kind)
    misuse("flag read as the wrong type", name);
  return f;
}

bool FlagParser::given(std::string_view name) const {
  auto it = byName_.find(name);
  if (it == byName_.end())
    misuse("undeclared flag", name);
  return flags_[it->second].given;
}

const std::string &FlagParser::getString(std::string_view name) const {
  return lookup(name, Kind::String).stringValue;
}
int64_t FlagParser::getInt(std::string_view name) const { return lookup(name, Kind::Int).intValue; }
double FlagParser::getDouble(std::string_view name) const {
  return lookup(name, Kind::Double).doubleValue;
}
bool FlagParser::getSwitch(std::string_view name) const {
  return lookup(name, Kind::Switch).switchValue;
}

std::string FlagParser::usage() const {
  std::ostringstream out;
  out << "Usage: " << program_ << " [flags]\n";
  if (!summary_.empty())
    out << "\n" << summary_ << "\n";
  std::string section = "\x01"; // never a real heading, so the first one prints
  for (const Flag &f : flags_) {
    if (f.section != section) {
      section = f.section;
      out << "\n" << (section.empty() ? "Flags" : section) << ":\n";
    }
    std::string spelled = "  ";
    spelled += f.alias ? std::string("-") + f.alias + ", " : "";
    spelled += "--" + f.name;
    if (f.kind != Kind::Switch)
      spelled += " " + f.valueName;
    out << spelled;
    // Help starts in column 32, or on the next line for long spellings, and wraps at
    // word boundaries to stay within 100 columns.
    constexpr size_t kHelpColumn = 32, kWidth = 100;
    if (spelled.size() + 2 > kHelpColumn)
      out << "\n" << std::string(kHelpColumn, ' ');
    else
      out << std::string(kHelpColumn - spelled.size(), ' ');
    std::string help = f.help;
    if (f.kind != Kind::Switch && !f.defaultText.empty())
      help += " (default: " + f.defaultText + ")";
    std::istringstream words(help);
    std::string word;
    size_t column = kHelpColumn;
    bool first = true;
    while (words >> word) {
      if (!first && column + 1 + word.size() > kWidth) {
        out << "\n" << std::string(kHelpColumn, ' ');
        column = kHelpColumn;
        first = true;
      }
      if (!first) {
        out << ' ';
        ++column;
      }
      out << word;
      column += word.size();
      first = false;
    }
    out << "\n";
  }
  out << "\n  -h, --help                    print this help and exit\n";
  return out.str();
}

} // namespace llamac::rt
