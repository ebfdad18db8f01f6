// Small pieces the cross-process benchmarks share: the clock, pinning, memory shared with forked
// children, and text for their reports.
#pragma once

#include <sched.h>
#include <sys/mman.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

namespace shmring::bench {

// CLOCK_MONOTONIC in nanoseconds.
inline std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Pins the calling thread (a freshly forked child: the process) to one core.
inline bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A T built in an anonymous MAP_SHARED mapping, which the children forked afterwards share with
// the parent; nullptr if mmap fails. release_shared() destroys and unmaps it.
template <typename T>
T* make_shared_record() {
  void* memory = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return memory == MAP_FAILED ? nullptr : new (memory) T;
}

template <typename T>
void release_shared(T* record) {
  record->~T();
  munmap(record, sizeof(T));
}

// "0,1".
inline std::string cpus_text(const std::vector<int>& cpus) {
  std::string text;
  for (std::size_t i = 0; i < cpus.size(); ++i) text += (i ? "," : "") + std::to_string(cpus[i]);
  return text;
}

// Escapes quotes and backslashes and drops control characters, for a JSON string.
inline std::string json_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

}  // namespace shmring::bench
