// The classic two-program QSharedMemory example, across two processes:
//   shmring_segment_demo writer KEY TEXT   creates the segment, writes TEXT under the lock, waits
//                                          until a reader has seen it (10 s at most), then detaches;
//   shmring_segment_demo reader KEY        attaches, prints the text and how long things took.
// The last process to detach removes the segment: nothing is left in /dev/shm afterwards.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "shmring/core/shared_memory.h"

namespace {

using Clock = std::chrono::steady_clock;

// What the two programs agree to keep in the segment.
struct Message {
  std::atomic<std::uint32_t> readers_done;  // set by a reader once it has printed the text
  std::uint32_t length;
  char text[4000];
};

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

int run_writer(const std::string& key, const std::string& text) {
  shmring::SharedMemory shm(key);
  auto start = Clock::now();
  if (!shm.create(sizeof(Message))) {
    std::fprintf(stderr, "writer: %s\n", shm.error_string().c_str());
    return 1;
  }
  const double create_us = micros_since(start);
  auto* message = static_cast<Message*>(shm.data());
  start = Clock::now();
  shm.lock();
  message->length = static_cast<std::uint32_t>(std::min(text.size(), sizeof message->text));
  std::memcpy(message->text, text.data(), message->length);
  shm.unlock();
  std::printf("writer[%d]: created '%s' (%s, %zu bytes) in %.0f us, wrote %u bytes under the lock "
              "in %.1f us\n",
              getpid(), key.c_str(), shm.native_key().c_str(), shm.size(), create_us,
              message->length, micros_since(start));
  std::fflush(stdout);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (message->readers_done.load(std::memory_order_acquire) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("writer[%d]: %u reader(s) done; detaching (the last detach removes the segment)\n",
              getpid(), message->readers_done.load());
  return 0;
}

int run_reader(const std::string& key) {
  shmring::SharedMemory shm(key);
  auto start = Clock::now();
  // The writer may still be starting: retry kNotFound for up to 5 s.
  while (!shm.attach()) {
    if (shm.error() != shmring::SharedMemoryError::kNotFound ||
        Clock::now() - start > std::chrono::seconds(5)) {
      std::fprintf(stderr, "reader: %s\n", shm.error_string().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double attach_us = micros_since(start);
  auto* message = static_cast<Message*>(shm.data());
  start = Clock::now();
  shm.lock();
  const std::string text(message->text, std::min<std::size_t>(message->length, sizeof message->text));
  shm.unlock();
  const double read_us = micros_since(start);
  std::printf("reader[%d]: attached in %.0f us (%d attachments), read under the lock in %.1f us:\n"
              "  \"%s\"\n",
              getpid(), attach_us, shm.num_attachments(), read_us, text.c_str());
  message->readers_done.fetch_add(1, std::memory_order_release);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "writer" && argc == 4) return run_writer(argv[2], argv[3]);
  if (mode == "reader" && argc == 3) return run_reader(argv[2]);
  std::fprintf(stderr, "usage: %s writer KEY TEXT | reader KEY\n", argv[0]);
  return 2;
}
