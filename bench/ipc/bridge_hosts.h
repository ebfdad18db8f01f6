// Two simulated hosts for the bridge benchmarks (bridge_bench.cc, bridge_stall_bench.cc): network
// namespaces A and B joined by a veth pair, made and removed by the run (root; loopback when they
// cannot be made), and children forked into either.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace shmring::bench {

// Two network namespaces joined by a veth pair, or loopback when they cannot be made.
struct Hosts {
  std::string ns[2];
  std::string address[2] = {"127.0.0.1", "127.0.0.1"};
  bool netns = false;

  static int run(const std::vector<std::string>& args) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }

  void make() {
    const std::string tag = std::to_string(getpid() % 100000);
    ns[0] = "srbenchA" + tag;
    ns[1] = "srbenchB" + tag;
    const std::string veth[2] = {"sbA" + tag, "sbB" + tag};
    bool ok = geteuid() == 0 && run({"ip", "netns", "add", ns[0]}) == 0 && run({"ip", "netns", "add", ns[1]}) == 0 &&
              run({"ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1]}) == 0;
    const char* addr[2] = {"10.78.0.1", "10.78.0.2"};
    for (int i = 0; ok && i < 2; ++i) {
      ok = run({"ip", "link", "set", veth[i], "netns", ns[i]}) == 0 &&
           run({"ip", "-n", ns[i], "addr", "add", std::string(addr[i]) + "/24", "dev", veth[i]}) == 0 &&
           run({"ip", "-n", ns[i], "link", "set", veth[i], "up"}) == 0 &&
           run({"ip", "-n", ns[i], "link", "set", "lo", "up"}) == 0;
    }
    if (!ok) {
      remove();
      return;
    }
    netns = true;
    address[0] = addr[0];
    address[1] = addr[1];
  }

  void remove() {
    for (const std::string& n : ns) {
      if (!n.empty()) run({"ip", "netns", "del", n});
    }
  }

  // In a child: moves this process into host `i`'s namespace.
  bool enter(int i) const {
    if (!netns) return true;
    const int fd = open(("/run/netns/" + ns[i]).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    return ok;
  }
};

// The child returns from `body` (so its endpoints close and their channels go with the last one)
// and then leaves without running the parent's exit handlers.
inline pid_t spawn(const Hosts& hosts, int host, const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!hosts.enter(host)) _exit(3);
    _exit(body());
  }
  return pid;
}

// The machine's load averages (1, 5, 15 minutes): figures are taken under some load, and say it.
inline std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

}  // namespace shmring::bench
