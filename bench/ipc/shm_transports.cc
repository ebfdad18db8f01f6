// Shared-memory transports of the benchmark:
//  - `floor`: the physical floor, one cache line bounced between the two processes (no payload);
//  - `shmring-spsc`: two shmring SpscRings (A->B, B->A) in one SharedMemory segment, copying calls.
#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>

#include "shmring/core/layout.h"
#include "shmring/core/shared_memory.h"
#include "shmring/queue/spsc_ring.h"
#include "transports.h"

namespace shmring::bench {
namespace {

// How a polling loop waits between attempts.
inline void idle(WaitMode wait, std::uint64_t& spins) {
  if (wait != WaitMode::kSpin && ++spins > 1000) sched_yield();
}

struct alignas(kFalseSharingRange) BouncedLine {
  std::atomic<std::uint64_t> turn{0};
};

class FloorEndpoint final : public Endpoint {
 public:
  explicit FloorEndpoint(BouncedLine* line) : line_(line) {}
  // The line carries 1, 2, 3, ...: A stores the odd values, B the even ones; each store hands the
  // line to the other side, which waits for exactly the next value.
  bool send(const std::byte*, std::size_t) override {
    // SYNC(floor): release, so the other side's acquire load sees everything before the hand-over.
    line_->turn.store(++seen_, std::memory_order_release);
    return true;
  }
  bool receive(std::byte*, std::size_t) override {
    // SYNC(floor): pairs with the other side's release store in send().
    while (line_->turn.load(std::memory_order_acquire) != seen_ + 1) {
    }
    ++seen_;
    return true;
  }

 private:
  BouncedLine* line_;
  std::uint64_t seen_ = 0;  // the last value stored or observed
};

class FloorTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode) const override { return "busy-poll (one cache line)"; }
  absl::Status prepare(const BenchConfig&) override {
    void* memory = mmap(nullptr, sizeof(BouncedLine), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return absl::InternalError("mmap");
    line_ = new (memory) BouncedLine;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int, const BenchConfig&) override {
    return std::unique_ptr<Endpoint>(new FloorEndpoint(line_));
  }
  void cleanup() override {
    if (line_ != nullptr) munmap(line_, sizeof(BouncedLine));
    line_ = nullptr;
  }

 private:
  BouncedLine* line_ = nullptr;
};

class SpscEndpoint final : public Endpoint {
 public:
  SpscEndpoint(SharedMemory shm, SpscRing out, SpscRing in, WaitMode wait)
      : shm_(std::move(shm)), out_(std::move(out)), in_(std::move(in)), wait_(wait) {}
  bool send(const std::byte* data, std::size_t size) override {
    std::uint64_t spins = 0;
    for (;;) {
      const RingResult result = out_.try_write(std::span<const std::byte>(data, size));
      if (result == RingResult::kOk) return true;
      if (result != RingResult::kFull) return false;
      idle(wait_, spins);
    }
  }
  bool receive(std::byte* data, std::size_t size) override {
    std::uint64_t spins = 0;
    bool size_ok = false;
    for (;;) {
      const RingResult result = in_.try_read([&](std::span<const std::byte> record) {
        size_ok = record.size() == size;
        std::memcpy(data, record.data(), std::min(size, record.size()));
      });
      if (result == RingResult::kOk) return size_ok;
      if (result != RingResult::kEmpty) return false;
      idle(wait_, spins);
    }
  }

 private:
  SharedMemory shm_;
  SpscRing out_;
  SpscRing in_;
  WaitMode wait_;
};

class SpscTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode wait) const override {
    return wait == WaitMode::kSpin ? "busy-poll" : "poll, sched_yield after 1000 empty polls";
  }
  absl::Status prepare(const BenchConfig& config) override {
    std::uint64_t capacity = 1 << 16;
    while (SpscRing::max_record_limit(capacity) < config.size || capacity < config.size * 4) {
      capacity <<= 1;
    }
    options_.capacity = capacity;
    options_.max_record = config.size;
    ring_bytes_ = align_up(SpscRing::required_bytes(options_), 4096);
    owner_.set_key("bench-spsc-" + config.run_id);
    if (!owner_.create(ring_bytes_ * 2)) return owner_.status();
    auto* base = static_cast<std::byte*>(owner_.data());
    for (int ring = 0; ring < 2; ++ring) {
      absl::StatusOr<SpscRing> created =
          SpscRing::create(base + ring * ring_bytes_, ring_bytes_, options_);
      if (!created.ok()) return created.status();
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    SharedMemory shm("bench-spsc-" + config.run_id);
    if (!shm.attach()) return shm.status();
    auto* base = static_cast<std::byte*>(shm.data());
    // Ring 0 carries A -> B, ring 1 carries B -> A.
    absl::StatusOr<SpscRing> out = SpscRing::attach(base + side * ring_bytes_, ring_bytes_);
    absl::StatusOr<SpscRing> in = SpscRing::attach(base + (1 - side) * ring_bytes_, ring_bytes_);
    if (!out.ok()) return out.status();
    if (!in.ok()) return in.status();
    return std::unique_ptr<Endpoint>(
        new SpscEndpoint(std::move(shm), *std::move(out), *std::move(in), config.wait));
  }
  void cleanup() override {
    if (owner_.is_attached()) owner_.detach();
  }

 private:
  SpscRing::Options options_;
  std::size_t ring_bytes_ = 0;
  SharedMemory owner_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_floor_transport() { return std::make_unique<FloorTransport>(); }
std::unique_ptr<IpcTransport> make_shmring_spsc_transport() {
  return std::make_unique<SpscTransport>();
}

}  // namespace shmring::bench
