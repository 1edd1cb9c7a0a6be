//===- TestPasses.h - test-only passes ------------------------------------*- C++ -*-===//
#ifndef LLAMAC_TEST_LIB_TESTPASSES_H
#define LLAMAC_TEST_LIB_TESTPASSES_H

namespace llamac {
/// Registers the test-* passes (llamac-opt and llamac load them, as mlir-opt does).
void registerTestPasses();
} // namespace llamac

#endif
