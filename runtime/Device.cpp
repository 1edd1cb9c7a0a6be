//===- Device.cpp - the CPU device and the profiler report ------------------------------===//
//
// On the CPU every region is ordinary host memory and a stream is the calling thread: a
// launch runs its kernel before returning, so events only need a timestamp and every
// synchronisation is a no-op. The kernels parallelise internally with OpenMP and BLIS, whose
// thread counts createCpuDevice sets once.
//
//===----------------------------------------------------------------------------------===//
#include "runtime/Device.h"
#include "runtime/Program.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace llamac::rt {

namespace {

constexpr size_t kAlignment = 64;

class CpuBuffer final : public Buffer {
public:
  CpuBuffer(std::byte *data, size_t size) : data_(data), size_(size) {}
  ~CpuBuffer() override { std::free(data_); }
  std::byte *data() override { return data_; }
  size_t size() const override { return size_; }

private:
  std::byte *data_;
  size_t size_;
};

class CpuEvent final : public Event {
public:
  void synchronize() override {}
  double secondsSince(const Event &earlier) const override {
    // Only CPU events exist on a CPU device; an unrecorded event counts as recorded at
    // creation, which keeps the result finite.
    const auto &e = static_cast<const CpuEvent &>(earlier);
    return std::chrono::duration<double>(time_ - e.time_).count();
  }
  void record() { time_ = std::chrono::steady_clock::now(); }

private:
  std::chrono::steady_clock::time_point time_ = std::chrono::steady_clock::now();
};

class CpuStream final : public Stream {
public:
  void launch(const char *, const std::function<void()> &kernel) override { kernel(); }
  void record(Event &event) override { static_cast<CpuEvent &>(event).record(); }
  // Work on the CPU stream is finished when launch() returns: nothing is ever pending.
  void wait(Event &) override {}
  void synchronize() override {}
};

class CpuDevice final : public Device {
public:
  std::string name() const override {
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    return "cpu (" + std::to_string(threads) + (threads == 1 ? " thread)" : " threads)");
  }

  std::unique_ptr<Buffer> allocate(size_t bytes, std::string *error) override {
    // Whole 64-byte lines, so that vectorised kernels may touch the tail of the last line,
    // and a zero-byte region still gets a valid, distinct pointer.
    size_t rounded =
        std::max<size_t>(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (rounded < bytes) { // overflow
      if (error)
        *error = "cannot allocate " + std::to_string(bytes) + " bytes of host memory: too large";
      return nullptr;
    }
    void *p = nullptr;
    int rc = posix_memalign(&p, kAlignment, rounded);
    if (rc != 0 || !p) {
      if (error)
        *error = "cannot allocate " + std::to_string(bytes) + " bytes of host memory (" +
                 std::strerror(rc ? rc : ENOMEM) + ")";
      return nullptr;
    }
    std::memset(p, 0, rounded);
    return std::make_unique<CpuBuffer>(static_cast<std::byte *>(p), bytes);
  }

  std::unique_ptr<Stream> createStream() override { return std::make_unique<CpuStream>(); }
  std::unique_ptr<Event> createEvent() override { return std::make_unique<CpuEvent>(); }
  void synchronize() override {}
};

} // namespace

std::unique_ptr<Device> createCpuDevice(int threads) {
  if (threads > 0) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    // BLIS reads its thread count from the environment when it initialises, on its first
    // call, which comes after this; setting it here avoids a link dependency on BLIS.
    setenv("BLIS_NUM_THREADS", std::to_string(threads).c_str(), /*overwrite=*/1);
  }
  return std::make_unique<CpuDevice>();
}

bool Device::copyToDevice(std::byte *dst, const void *src, size_t bytes, std::string *) {
  if (bytes)
    std::memcpy(dst, src, bytes);
  return true;
}

bool Device::copyToHost(void *dst, const std::byte *src, size_t bytes, std::string *) {
  if (bytes)
    std::memcpy(dst, src, bytes);
  return true;
}

std::unique_ptr<Device> createProgramDevice(const ProgramSpec &program, int threads,
                                           std::string *error) {
  if (program.createDevice)
    return program.createDevice(threads, error);
  return createCpuDevice(threads);
}

std::string Profiler::report() const {
  std::vector<std::pair<std::string, Entry>> rows(entries_.begin(), entries_.end());
  std::stable_sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) {
    return a.second.seconds > b.second.seconds;
  });
  double total = 0;
  int64_t calls = 0;
  size_t width = 6; // "kernel"
  for (const auto &[name, e] : rows) {
    total += e.seconds;
    calls += e.calls;
    width = std::max(width, name.size());
  }
  std::string out;
  char line[512];
  auto addRow = [&](const std::string &name, const Entry &e) {
    double share = total > 0 ? 100.0 * e.seconds / total : 0.0;
    double meanUs = e.calls ? 1e6 * e.seconds / double(e.calls) : 0.0;
    std::snprintf(line, sizeof(line), "%-*s %10lld %12.3f %12.2f %7.1f%%\n", int(width),
                  name.c_str(), static_cast<long long>(e.calls), 1e3 * e.seconds, meanUs, share);
    out += line;
  };
  std::snprintf(line, sizeof(line), "%-*s %10s %12s %12s %8s\n", int(width), "kernel", "calls",
                "total ms", "mean us", "share");
  out += line;
  for (const auto &[name, e] : rows)
    addRow(name, e);
  Entry sum;
  sum.seconds = total;
  sum.calls = calls;
  addRow("total", sum);
  return out;
}

} // namespace llamac::rt
