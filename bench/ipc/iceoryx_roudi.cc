#include "iceoryx_roudi.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

namespace shmring::bench {
namespace {
constexpr const char* kRoudiSocket = "/tmp/roudi";
}  // namespace

absl::Status RoudiProcess::start(std::size_t chunk_bytes, std::size_t chunks) {
  if (access(kRoudiSocket, F_OK) == 0) {
    return absl::UnavailableError(
        "a RouDi already runs on this machine (/tmp/roudi exists): not starting a second one");
  }
  started_ = std::chrono::system_clock::now();
  char dir_template[] = "/tmp/shmring_bench_iox_XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp");
  dir_ = dir_template;
  const std::string config_path = dir_ + "/roudi.toml";
  {
    std::ofstream toml(config_path);
    toml << "[general]\nversion = 1\n\n[[segment]]\n\n[[segment.mempool]]\nsize = 128\n"
            "count = 1000\n\n[[segment.mempool]]\nsize = "
         << chunk_bytes << "\ncount = " << chunks << "\n";
  }
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execlp("iox-roudi", "iox-roudi", "-c", config_path.c_str(), nullptr);
    _exit(127);
  }
  if (pid_ < 0) return absl::InternalError("fork iox-roudi");
  // RouDi is up when its management socket exists.
  for (int i = 0; i < 5000; ++i) {
    struct stat st {};
    if (stat(kRoudiSocket, &st) == 0) return absl::OkStatus();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError("iox-roudi exited at start (is another RouDi running?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::UnavailableError("iox-roudi did not come up in 5 s");
}

void RoudiProcess::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 3000 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    remove_leftovers();
  }
  if (!dir_.empty()) {
    unlink((dir_ + "/roudi.toml").c_str());
    rmdir(dir_.c_str());
    dir_.clear();
  }
}

// RouDi 2.0 leaves its management segment, socket and lock files behind when it is stopped.
// Remove those that our RouDi made (newer than its start), never an older RouDi's.
void RoudiProcess::remove_leftovers() const {
  const auto started = std::chrono::system_clock::to_time_t(started_);
  std::vector<std::string> paths = {"/dev/shm/iceoryx_mgmt", "/tmp/roudi", "/tmp/roudi.lock",
                                    "/tmp/iox-unique-roudi.lock"};
  // The payload segment is named after the writers' group.
  if (const group* g = getgrgid(getegid())) paths.push_back(std::string("/dev/shm/") + g->gr_name);
  for (const std::string& path : paths) {
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && st.st_mtime >= started - 1) unlink(path.c_str());
  }
}

}  // namespace shmring::bench
