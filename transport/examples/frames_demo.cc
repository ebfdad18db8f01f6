// Frames demo: 4 MiB frames at 60 per second, written in place by a publisher, read in place by a
// normal viewer and a slow viewer that always shows the newest frame (and counts what it skipped).
//
//   shmring_example_frames [--seconds 3] [--name demo.frames]
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <thread>

#include "example_util.h"
#include "shmring/transport/frame.h"

using namespace shmring;
using namespace shmring::examples;

namespace {

constexpr std::size_t kFrame = 4 << 20;

struct Board {
  std::atomic<std::uint32_t> ready;
  std::atomic<std::uint32_t> stop;
  std::atomic<std::uint64_t> shown[2];
  std::atomic<std::uint64_t> skipped[2];
  std::atomic<std::uint64_t> torn[2];
};

// Frame n: every 8-byte word w at offset k holds mix64(n * 1'000'003 + k) (cheap to check a sample).
void paint(std::span<std::byte> f, std::uint64_t n) {
  for (std::size_t k = 0; k + 8 <= f.size(); k += 8) {
    const std::uint64_t w = mix64(n * 1'000'003 + k);
    std::memcpy(f.data() + k, &w, 8);
  }
}
bool intact(std::span<const std::byte> f, std::uint64_t n) {
  for (std::size_t k = 0; k + 8 <= f.size(); k += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, f.data() + k, 8);
    if (w != mix64(n * 1'000'003 + k)) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = std::atoi(arg(argc, argv, "--seconds", "3").c_str());
  const std::string name = arg(argc, argv, "--name", "demo.frames." + std::to_string(getpid()));
  FrameOptions o;
  o.capacity = 4;
  o.max_message = kFrame;
  auto pub = FramePublisher::open(name, o);
  if (!pub.ok()) {
    std::fprintf(stderr, "%s\n", pub.status().ToString().c_str());
    return 2;
  }
  Board* board = shared_block<Board>();
  std::vector<pid_t> pids;
  for (int v = 0; v < 2; ++v) {
    pids.push_back(spawn([&, v] {
      auto sub = FrameSubscriber::open(name, o);
      if (!sub.ok()) return 2;
      board->ready.fetch_add(1);
      while (board->stop.load() == 0) {
        FrameView f = sub->receive_view(std::chrono::milliseconds(50));
        if (!f.ok()) continue;
        if (f.data().size() != kFrame || !intact(f.data(), f.sequence())) board->torn[v].fetch_add(1);
        board->shown[v].fetch_add(1);
        if (v == 1) std::this_thread::sleep_for(std::chrono::milliseconds(45));  // a slow display
      }
      board->skipped[v].store(sub->lost());
      return 0;
    }));
  }
  while (board->ready.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto start = std::chrono::steady_clock::now();
  const std::uint64_t frames = static_cast<std::uint64_t>(seconds) * 60;
  for (std::uint64_t i = 1; i <= frames; ++i) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(16667) * i);
    FrameLoan loan = pub->loan(std::chrono::milliseconds(100));
    if (!loan.ok()) continue;
    paint(loan.buffer(), pub->frames_published() + 1);  // frame numbers are 1, 2, ...
    pub->publish(loan, kFrame);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  board->stop.store(1);
  bool ok = true;
  for (pid_t pid : pids) ok = wait_ok(pid) && ok;
  std::printf("frames: %" PRIu64 " frames of 4 MiB at 60/s, written and read in place\n",
              pub->frames_published());
  const char* names[2] = {"viewer", "slow viewer"};
  for (int v = 0; v < 2; ++v) {
    std::printf("  %-11s showed %" PRIu64 ", skipped to newest %" PRIu64 ", torn %" PRIu64 "\n",
                names[v], board->shown[v].load(), board->skipped[v].load(), board->torn[v].load());
    if (board->torn[v].load() != 0 || board->shown[v].load() == 0) ok = false;
  }
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
