//===- Flags.h - command-line flags for the generated programs' drivers ---*- C++ -*-===//
//
// A small GNU-style flag parser shared by trainMain and inferMain: flags are declared with
// a name, a default and a help line, then argv is parsed into typed values.
//
//   --name value   --name=value   -o value (declared short aliases)   --switch
//
// A flag that takes a value takes the next argument whatever it looks like ("--lr -1" sets
// -1, which range checks then reject), except that an argument starting with "--" is
// reported as a missing value ("--data --steps 3" is almost always a forgotten file name).
// A switch may be written --switch=true|false|1|0. Positional arguments are rejected. Every
// error message names the flag and, for bad values, the value.
//
//   FlagParser flags("train_x", "Trains <model>.");
//   flags.addInt("steps", 1000, "optimizer steps", /*min=*/1);
//   flags.addString("data", "", "raw UTF-8 text corpus", "FILE");
//   flags.addSwitch("resume", "continue from the latest checkpoint");
//   std::string error;
//   switch (flags.parse(argc, argv, &error)) {
//   case FlagParser::Result::Help:  fputs(flags.usage().c_str(), stdout); return 0;
//   case FlagParser::Result::Error: fprintf(stderr, "%s\n", error.c_str()); return 2;
//   case FlagParser::Result::Ok:    break;
//   }
//   int64_t steps = flags.getInt("steps");
//
// Getters on undeclared names, or of the wrong type, are programming errors and abort.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_FLAGS_H
#define LLAMAC_RUNTIME_FLAGS_H

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace llamac::rt {

class FlagParser {
public:
  enum class Result { Ok, Help, Error };

  /// `program` names the executable in the usage line; `summary` follows it.
  FlagParser(std::string program, std::string summary);

  /// A text value; `valueName` ("FILE", "DIR") is shown in the usage.
  void addString(std::string name, std::string defaultValue, std::string help,
                 std::string valueName = "VALUE");
  /// An integer in [min, max] (checked when given; the default is not checked).
  void addInt(std::string name, int64_t defaultValue, std::string help,
              int64_t min = std::numeric_limits<int64_t>::min(),
              int64_t max = std::numeric_limits<int64_t>::max());
  /// A finite number in [min, max].
  void addDouble(std::string name, double defaultValue, std::string help,
                 double min = -std::numeric_limits<double>::max(),
                 double max = std::numeric_limits<double>::max());
  /// One of `choices` (the default should be one of them).
  void addChoice(std::string name, std::string defaultValue, std::vector<std::string> choices,
                 std::string help);
  /// A boolean that takes no value; false unless given.
  void addSwitch(std::string name, std::string help);
  /// `-x` as another spelling of the declared flag `name` (e.g. addAlias('o', "output")).
  void addAlias(char shortName, std::string name);
  /// A heading printed in the usage before the flags declared after this call.
  void addSection(std::string title);
  /// Replaces the "(default: ...)" the usage shows for `name`; "" shows none (for defaults
  /// that mean "not given", such as 0 for "whatever the program was compiled for").
  void setDefaultText(std::string_view name, std::string text);

  /// Parses argv[1..argc). Help when --help or -h is given (nothing else is checked then);
  /// Error with `error` set on the first bad argument. Flags given twice keep the last value.
  Result parse(int argc, char **argv, std::string *error);

  /// Whether the flag was given on the command line (as opposed to its default).
  bool given(std::string_view name) const;
  const std::string &getString(std::string_view name) const;
  int64_t getInt(std::string_view name) const;
  double getDouble(std::string_view name) const;
  bool getSwitch(std::string_view name) const;
  /// The value of a choice flag.
  const std::string &getChoice(std::string_view name) const { return getString(name); }

  /// The usage text: a line with the program, the summary and one entry per flag with its
  /// help and default, wrapped to 100 columns.
  std::string usage() const;

private:
  enum class Kind { String, Int, Double, Choice, Switch };
  struct Flag {
    std::string name;
    Kind kind;
    std::string help;
    std::string valueName;
    std::vector<std::string> choices;
    int64_t intMin = 0, intMax = 0;
    double doubleMin = 0, doubleMax = 0;
    std::string section; ///< heading in effect when declared
    char alias = 0;
    bool given = false;
    std::string stringValue;
    int64_t intValue = 0;
    double doubleValue = 0;
    bool switchValue = false;
    std::string defaultText;
  };

  Flag &declare(std::string name, Kind kind, std::string help);
  const Flag &lookup(std::string_view name, Kind kind) const;
  bool setValue(Flag &flag, const std::string &value, std::string *error);

  std::string program_, summary_, section_;
  std::vector<Flag> flags_; ///< in declaration order, for the usage text
  std::map<std::string, size_t, std::less<>> byName_;
  std::map<char, size_t> byAlias_;
};

} // namespace llamac::rt

#endif
