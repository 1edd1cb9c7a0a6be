//===- Program.cpp - looking up a compiled program's functions and parameters --------===//
//
// Linear searches: a program has a handful of functions and a few hundred parameters, and
// the drivers look them up once at start-up.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Program.h"

namespace llamac::rt {

const FunctionSpec *findFunction(const ProgramSpec &program, std::string_view name) {
  for (int32_t i = 0; i < program.numFunctions; ++i)
    if (program.functions[i].name && name == program.functions[i].name)
      return &program.functions[i];
  return nullptr;
}

const ParamSpec *findParam(const ProgramSpec &program, std::string_view name) {
  for (int32_t i = 0; i < program.numParams; ++i)
    if (program.params[i].name && name == program.params[i].name)
      return &program.params[i];
  return nullptr;
}

} // namespace llamac::rt
