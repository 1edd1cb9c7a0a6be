//===- CopyingDevice.h - a device the drivers reach only through copies ---*- C++ -*-===//
//
// For the drivers' tests: a Device whose memory the host may not touch directly, as a GPU's,
// with host memory underneath so that the fake programs' kernels still run. A driver that
// forgets to copy the parameters to it (after initialising, loading or resuming) or back
// (before a checkpoint) computes something else than on the CPU device, which the tests
// compare with bit for bit. openMissingDevice stands for a machine without the device.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_TEST_RUNTIME_COPYINGDEVICE_H
#define LLAMAC_TEST_RUNTIME_COPYINGDEVICE_H

#include "runtime/Device.h"

#include <cstring>
#include <memory>
#include <string>

namespace llamac::test {

class CopyingDevice final : public rt::Device {
public:
  /// Copies made by any CopyingDevice, in each direction.
  static inline int toDevice = 0, toHost = 0;
  static void resetCounts() { toDevice = toHost = 0; }

  std::string name() const override { return "copying test device"; }
  std::unique_ptr<rt::Buffer> allocate(size_t bytes, std::string *error) override {
    return cpu_->allocate(bytes, error);
  }
  std::unique_ptr<rt::Stream> createStream() override { return cpu_->createStream(); }
  std::unique_ptr<rt::Event> createEvent() override { return cpu_->createEvent(); }
  void synchronize() override {}
  bool hostAccessible() const override { return false; }
  bool copyToDevice(std::byte *dst, const void *src, size_t bytes, std::string *) override {
    ++toDevice;
    std::memcpy(dst, src, bytes);
    return true;
  }
  bool copyToHost(void *dst, const std::byte *src, size_t bytes, std::string *) override {
    ++toHost;
    std::memcpy(dst, src, bytes);
    return true;
  }

private:
  std::unique_ptr<rt::Device> cpu_ = rt::createCpuDevice(0);
};

inline std::unique_ptr<rt::Device> openCopyingDevice(int, std::string *) {
  return std::make_unique<CopyingDevice>();
}

inline std::unique_ptr<rt::Device> openMissingDevice(int, std::string *error) {
  *error = "no test device here";
  return nullptr;
}

} // namespace llamac::test

#endif
