//===- Device.h - device-neutral runtime interfaces -------------------------*- C++ -*-===//
//
// What a generated program's driver needs from the machine it runs on, behind one interface
// per concept so that the CUDA backend (and communication streams) sit beside the CPU one:
//
//   Device    allocates the regions of a ProgramSpec (params, arena, cache), creates
//             streams and events, reports its name.
//   Stream    an ordered queue of work. launch() enqueues a kernel; on the CPU it runs at
//             once on the calling thread (its kernels use OpenMP inside).
//   Event     a point in a stream that another stream can wait on, and a timestamp.
//   Profiler  per-kernel-kind time and call counts, filled by generated code when enabled.
//   Timer     wall-clock seconds.
//
//===----------------------------------------------------------------------------------===//
#ifndef LLAMAC_RUNTIME_DEVICE_H
#define LLAMAC_RUNTIME_DEVICE_H

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace llamac::rt {

class Event {
public:
  virtual ~Event() = default;
  /// Blocks until the work recorded before this event has finished.
  virtual void synchronize() = 0;
  /// Seconds between `earlier` and this event (both recorded and finished).
  virtual double secondsSince(const Event &earlier) const = 0;
};

class Stream {
public:
  virtual ~Stream() = default;
  /// Enqueues `kernel` (named for errors and profiles).
  virtual void launch(const char *name, const std::function<void()> &kernel) = 0;
  virtual void record(Event &event) = 0;
  /// Later work on this stream waits for `event`.
  virtual void wait(Event &event) = 0;
  virtual void synchronize() = 0;
};

/// A block of device memory, 64-byte aligned, zero-initialised.
class Buffer {
public:
  virtual ~Buffer() = default;
  virtual std::byte *data() = 0;
  virtual size_t size() const = 0;
};

class Device {
public:
  virtual ~Device() = default;
  /// "cpu (2 threads)", "NVIDIA H100 80GB HBM3 (sm_90)".
  virtual std::string name() const = 0;
  /// Null (and `error`, saying how much was asked) when the memory is not available.
  virtual std::unique_ptr<Buffer> allocate(size_t bytes, std::string *error) = 0;
  virtual std::unique_ptr<Stream> createStream() = 0;
  virtual std::unique_ptr<Event> createEvent() = 0;
  virtual void synchronize() = 0;

  /// Whether the host reads and writes this device's buffers directly (the CPU). Drivers
  /// keep a host copy of the parameter region otherwise and move it with the copies below.
  virtual bool hostAccessible() const { return true; }
  /// Synchronous copies between host memory and a buffer of this device; false (and
  /// `error`) when the device reports a failure.
  virtual bool copyToDevice(std::byte *dst, const void *src, size_t bytes, std::string *error);
  virtual bool copyToHost(void *dst, const std::byte *src, size_t bytes, std::string *error);
  /// What generated code for this device's target needs beside the regions (streams,
  /// library handles), handed to it as Context::backend; null on the CPU.
  virtual void *backend() { return nullptr; }
};

/// The CPU device; `threads` 0 keeps the OpenMP/BLIS default, otherwise sets both.
std::unique_ptr<Device> createCpuDevice(int threads);

/// The device a program runs on: its ProgramSpec::createDevice (the CUDA backend sets one),
/// or the CPU device; null (and `error`) when the device cannot be opened.
std::unique_ptr<Device> createProgramDevice(const struct ProgramSpec &program, int threads,
                                           std::string *error);

class Timer {
public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

private:
  std::chrono::steady_clock::time_point start_;
};

class Profiler {
public:
  struct Entry {
    double seconds = 0;
    int64_t calls = 0;
  };
  void add(const char *kernel, double seconds) {
    Entry &e = entries_[kernel];
    e.seconds += seconds;
    ++e.calls;
  }
  const std::map<std::string, Entry> &entries() const { return entries_; }
  /// A table, most expensive kernel first, with each kernel's share of the total.
  std::string report() const;
  void clear() { entries_.clear(); }

private:
  std::map<std::string, Entry> entries_;
};

} // namespace llamac::rt

#endif
