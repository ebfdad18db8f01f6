// The processes of one several-publishers run: forked, pinned, started together, stopped, reaped.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <thread>

#include "publishers_bench.h"

namespace shmring::bench::publishers {
namespace {

pid_t fork_child(int cpu, SharedRun& run, const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid != 0) return pid;
  if (!pin_to_cpu(cpu)) fail(run, "cannot pin to cpu " + std::to_string(cpu));
  // Paced publishers sleep between messages: wake them on time, not up to 50 us late.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  _exit(body());
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Waits until `ready` reaches `count`, or a child died, or 20 s passed.
bool wait_ready(SharedRun& run, int count, const std::vector<pid_t>& children) {
  const std::int64_t deadline = now_ns() + 20'000'000'000;
  while (run.ready.load() < count) {
    if (run.errors.load() > 0 || now_ns() > deadline) return false;
    for (pid_t child : children) {
      int status = 0;
      if (child > 0 && waitpid(child, &status, WNOHANG) == child) return false;  // died opening
    }
    sleep_ms(1);
  }
  return true;
}

// Reaps every child; kills all that remain once one failed (after a second's grace) or after
// `limit_ns`. Returns false if any had to be killed or exited non-zero.
bool reap(std::vector<pid_t>& children, std::int64_t limit_ns, SharedRun& run) {
  const std::int64_t deadline = now_ns() + limit_ns;
  std::int64_t first_failure = 0;
  bool clean = true;
  int running = static_cast<int>(std::count_if(children.begin(), children.end(), [](pid_t p) { return p > 0; }));
  while (running > 0) {
    for (pid_t& child : children) {
      int status = 0;
      if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
        child = -1;
        --running;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          clean = false;
          if (first_failure == 0) first_failure = now_ns();
        }
      }
    }
    const bool stuck = first_failure != 0 && now_ns() - first_failure > 1'000'000'000;
    if (running > 0 && (stuck || now_ns() > deadline)) {
      if (!stuck) fail(run, "a child process hung: killed");
      for (pid_t child : children) {
        if (child > 0) kill(child, SIGKILL);
      }
      clean = false;
    }
    sleep_ms(1);
  }
  return clean;
}

}  // namespace

void sleep_until_ns(std::int64_t deadline_ns) {
  const timespec ts{static_cast<time_t>(deadline_ns / 1'000'000'000),
                    static_cast<long>(deadline_ns % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

Outcome run_processes(PeerUnderTest& peer, const RunSpec& spec) {
  Outcome out;
  if (spec.publishers < 1 || spec.publishers > kMaxPublishers || spec.publisher_cpus.empty()) {
    out.error = "bad run: publishers must be 1.." + std::to_string(kMaxPublishers);
    return out;
  }
  SharedRun* run = make_shared_record<SharedRun>();
  if (run == nullptr) {
    out.error = "mmap failed";
    return out;
  }
  if (const absl::Status prepared = peer.prepare(spec); !prepared.ok()) {
    out.error = std::string(prepared.message());
    out.skipped = true;
    peer.cleanup(spec);
    release_shared(run);
    return out;
  }
  // The subscriber first, so it is there before the first message.
  std::vector<pid_t> children;
  children.push_back(fork_child(spec.subscriber_cpu, *run, [&] { return peer.run_subscriber(spec, *run); }));
  bool started = wait_ready(*run, 1, children);
  for (int i = 0; started && i < spec.publishers; ++i) {
    const int cpu = spec.publisher_cpus[static_cast<std::size_t>(i) % spec.publisher_cpus.size()];
    children.push_back(fork_child(cpu, *run, [&, i] { return peer.run_publisher(i, spec, *run); }));
  }
  started = started && wait_ready(*run, 1 + spec.publishers, children);
  if (!started) {
    fail(*run, "a process could not open its endpoint");
    run->stop.store(1);
  }
  const std::int64_t seconds_ns = static_cast<std::int64_t>(spec.seconds * 1e9);
  run->measure_from_ns.store(now_ns() + std::min<std::int64_t>(seconds_ns / 10, 500'000'000));
  run->go.store(1, std::memory_order_release);
  if (started) {
    const std::int64_t stop_at = now_ns() + seconds_ns;
    while (now_ns() < stop_at && run->errors.load() == 0) sleep_ms(1);
  }
  run->stop.store(1, std::memory_order_release);
  const bool clean = reap(children, seconds_ns + 90'000'000'000, *run);
  peer.cleanup(spec);

  const SubscriberRecord& sub = run->subscriber;
  // Rates over each side's window (after the warm-up); the publishers' add up.
  auto rate = [](std::uint64_t count, std::int64_t first_ns, std::int64_t last_ns) {
    return last_ns > first_ns ? static_cast<double>(count) / (static_cast<double>(last_ns - first_ns) / 1e9) : 0.0;
  };
  for (int i = 0; i < spec.publishers; ++i) {
    const PublisherRecord& p = run->publisher[i];
    out.published += p.published;
    out.published_per_s += rate(p.published - p.first_count, p.first_ns, p.last_ns);
  }
  if (sub.first_ns > 0 && sub.received > sub.first_count + 1) {
    out.delivered_per_s = rate(sub.received - sub.first_count - 1, sub.first_ns, sub.last_ns);
  }
  out.received = sub.received;
  out.lost = out.published > sub.received ? out.published - sub.received : 0;
  out.gaps = sub.gaps;
  out.out_of_order = sub.out_of_order;
  out.topic_order_violations = sub.topic_order_violations;
  out.lost_counted = sub.lost_counted;
  out.counts_losses = sub.counts_losses;
  out.samples = run->latency.count();
  out.p50 = run->latency.percentile(50);
  out.p99 = run->latency.percentile(99);
  out.p999 = run->latency.percentile(99.9);
  out.max = run->latency.max();
  out.error = run->error;
  if (out.error.empty() && !clean) out.error = "a child process failed";
  if (out.error.empty() && spec.lossless && out.lost != 0) out.error = "lossless delivery lost messages";
  if (out.error.empty() && out.received > out.published) out.error = "more messages received than published";
  out.ok = out.error.empty();
  release_shared(run);
  return out;
}

}  // namespace shmring::bench::publishers
