// Other local users attack shmring (issue 21; docs/security.md has the threat model). Run by
// run_security_tests.sh as root, with two real users (alice, bob) and a group alice is in, in a
// private mount + IPC namespace with its own /dev/shm. One test per defect found: each shows what
// an attacker tried and that it no longer works. A user is played by a forked child that switches
// to that user (setgroups, setresgid, setresuid) and runs library calls or the real CLI.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "run_command.h"
#include "shmring/core/segment_directory.h"
#include "shmring/core/segment_header.h"
#include "shmring/core/shared_memory.h"
#include "shmring/core/system_semaphore.h"
#include "shmring/transport/queue.h"
#include "shmring/transport/topic.h"
#include "test_support.h"

namespace shmring {
namespace {

using namespace std::chrono_literals;
using testing::CommandResult;

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

User user_from_env(const char* variable) {
  const char* name = std::getenv(variable);
  User u;
  if (name == nullptr) return u;
  const passwd* entry = getpwnam(name);
  if (entry == nullptr) return u;
  u.name = name;
  u.uid = entry->pw_uid;
  u.gid = entry->pw_gid;
  return u;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    alice_ = user_from_env("SHMRING_SECURITY_ALICE");
    bob_ = user_from_env("SHMRING_SECURITY_BOB");
    if (alice_.name.empty() || bob_.name.empty() || geteuid() != 0) {
      GTEST_SKIP() << "run through tests/security/run_security_tests.sh (root, real users)";
    }
    const char* group = std::getenv("SHMRING_SECURITY_GROUP");
    const struct group* g = group != nullptr ? getgrnam(group) : nullptr;
    shared_group_ = g != nullptr ? g->gr_gid : static_cast<gid_t>(-1);
    cli_ = std::getenv("SHMRING_CLI") != nullptr ? std::getenv("SHMRING_CLI") : "";
  }

  // Runs `body` as `user` in a forked child; returns its exit status (0: fine).
  int as(const User& user, const std::function<int()>& body) {
    const pid_t child = testing::fork_child([&] {
      gid_t groups[1] = {shared_group_};
      const int n = user.name == alice_.name && shared_group_ != static_cast<gid_t>(-1) ? 1 : 0;
      if (setgroups(static_cast<std::size_t>(n), groups) != 0 || setresgid(user.gid, user.gid, user.gid) != 0 ||
          setresuid(user.uid, user.uid, user.uid) != 0) {
        return 98;
      }
      return body();
    });
    const testing::ChildResult r = testing::wait_child(child, 120s);
    if (r.signaled) return 128 + r.code;
    return r.exited ? r.code : 97;
  }

  // Starts `body` as `user` in the background; the caller kills it.
  pid_t start_as(const User& user, const std::function<int()>& body) {
    return testing::fork_child([&] {
      if (setgroups(0, nullptr) != 0 || setresgid(user.gid, user.gid, user.gid) != 0 ||
          setresuid(user.uid, user.uid, user.uid) != 0) {
        return 98;
      }
      return body();
    });
  }

  // The CLI as `user` (nullptr: root).
  CommandResult cli(const User* user, std::vector<std::string> words, const std::string& input = "") {
    std::vector<std::string> argv;
    if (user != nullptr) {
      argv = {"/usr/bin/setpriv", "--reuid=" + std::to_string(user->uid), "--regid=" + std::to_string(user->gid),
              "--clear-groups", "--"};
    }
    argv.push_back(cli_);
    for (std::string& w : words) argv.push_back(std::move(w));
    return testing::run_command(argv, input, 60);
  }

  static void stop(pid_t child) {
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
  }

  User alice_;
  User bob_;
  gid_t shared_group_ = static_cast<gid_t>(-1);
  std::string cli_;
};

// A pipe a child writes one byte into when it is ready.
struct Ready {
  int fds[2] = {-1, -1};
  Ready() { EXPECT_EQ(pipe(fds), 0); }
  ~Ready() {
    close(fds[0]);
    close(fds[1]);
  }
  void signal() const { [[maybe_unused]] const ssize_t n = write(fds[1], "r", 1); }
  bool wait() const {
    pollfd p{fds[0], POLLIN, 0};
    char c = 0;
    return poll(&p, 1, 20000) == 1 && read(fds[0], &c, 1) == 1;
  }
};

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string channel_path(const std::string& name) {
  return "/dev/shm/" + SharedMemory::native_key_for(channel_key(name));
}

bool semaphore_exists(int id) {
  semid_ds ds{};
  return semctl(id, 0, IPC_STAT, &ds) == 0;
}

// Defect 1: bob pre-creates alice's channel name, 0666, and keeps a subscriber on it. Alice's
// publisher (default 0600) must refuse it, naming bob, and bob must receive nothing; the CLI too.
TEST_F(SecurityTest, ASquattedChannelIsRefusedNotUsed) {
  Ready ready;
  int received[2] = {-1, -1};
  ASSERT_EQ(pipe(received), 0);
  const pid_t squatter = start_as(bob_, [&] {
    TopicOptions o;
    o.permissions = 0666;
    auto sub = TopicSubscriber::open("orders", o);
    if (!sub.ok()) return 1;
    ready.signal();
    std::vector<std::byte> buf(sub->max_message());
    std::size_t n = 0;
    for (;;) {
      if (sub->receive(buf, &n, 1s) == ChannelResult::kOk) {
        [[maybe_unused]] const ssize_t w = write(received[1], buf.data(), n);
      }
    }
  });
  ASSERT_TRUE(ready.wait());
  const int status = as(alice_, [&] {
    auto pub = TopicPublisher::open("orders");
    if (pub.ok()) {
      pub->try_send(bytes_of("card 4111-1111"));
      return 1;
    }
    if (pub.status().code() != absl::StatusCode::kPermissionDenied) return 2;
    if (std::string(pub.status().message()).find(bob_.name) == std::string::npos) return 3;
    return 0;
  });
  EXPECT_EQ(status, 0) << "alice used bob's look-alike channel (or the error did not name bob)";
  const CommandResult r = cli(&alice_, {"pub", "orders", "--create", "--kind", "topic"}, "card 4111-1111\n");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(bob_.name), std::string::npos) << r.err;
  std::this_thread::sleep_for(300ms);
  pollfd p{received[0], POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "bob received a message";
  stop(squatter);
  close(received[0]);
  close(received[1]);
}

// The same check with an owner she trusts: alice opts in to bob's channel by uid.
TEST_F(SecurityTest, ATrustedOwnersChannelIsUsedWhenTheCallerOptsIn) {
  Ready ready;
  const pid_t owner = start_as(bob_, [&] {
    TopicOptions o;
    o.permissions = 0666;
    auto sub = TopicSubscriber::open("shared_feed", o);
    if (!sub.ok()) return 1;
    ready.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(ready.wait());
  EXPECT_EQ(as(alice_, [&] {
              TopicOptions o;
              o.trusted_owners = {bob_.uid};
              o.permissions = 0666;
              auto pub = TopicPublisher::open("shared_feed", o);
              return pub.ok() && pub->try_send(bytes_of("hello")) == ChannelResult::kOk ? 0 : 1;
            }),
            0);
  stop(owner);
}

// Defect 2: a file bob keeps resizing, named like a channel, must not kill alice's channel opens
// (each sweeps stale-looking files) nor root's tools (ls, gc, stat, top read it).
TEST_F(SecurityTest, AFileAnotherUserKeepsResizingKillsNobody) {
  const std::string path = channel_path("victim_bait");
  Ready ready;
  const pid_t resizer = start_as(bob_, [&] {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return 1;
    // A plausible header first, then sizes that keep changing under any mapping.
    std::vector<char> page(8192, 0);
    SegmentHeader h{};
    h.magic = kSegmentMagic;
    h.layout_version = kSegmentLayoutVersion;
    h.header_size = kSegmentHeaderSize;
    h.user_size = 4096;
    h.state.store(static_cast<std::uint32_t>(SegmentState::kReady));
    std::memcpy(page.data(), &h, sizeof h);
    if (pwrite(fd, page.data(), page.size(), 0) != static_cast<ssize_t>(page.size())) return 2;
    ready.signal();
    for (unsigned i = 0;; ++i) {
      if (ftruncate(fd, (i % 2) == 0 ? 0 : 8192) != 0) return 3;
      if ((i % 2) == 1 && pwrite(fd, page.data(), sizeof h, 0) != static_cast<ssize_t>(sizeof h)) return 4;
    }
  });
  ASSERT_TRUE(ready.wait());
  // Alice opens (and sweeps) many times; any SIGBUS is a failure of the child.
  EXPECT_EQ(as(alice_, [&] {
              for (int i = 0; i < 40; ++i) {
                auto q = QueueProducer::open("alice_q_" + std::to_string(i));
                if (!q.ok()) return 1;
              }
              return 0;
            }),
            0);
  for (int round = 0; round < 20; ++round) {
    for (const std::vector<std::string>& words :
         {std::vector<std::string>{"ls"}, {"ls", "--json"}, {"gc", "--dry-run"}, {"gc"},
          {"stat", "victim_bait"}}) {
      const CommandResult r = cli(nullptr, words);
      EXPECT_LT(r.status, 128) << words[0] << " was killed by signal " << r.status - 128;
    }
  }
  stop(resizer);
  unlink(path.c_str());
}

// Defect 3: a forged file naming other sets (root's own, alice's live channel lock) must not make
// root's gc, nor alice's channel opens, remove them.
TEST_F(SecurityTest, AForgedHeaderCannotMakeAnyoneRemoveSetsItNames) {
  // Root's unrelated set, and alice's live channel.
  const int root_set = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
  ASSERT_GE(root_set, 0);
  Ready ready;
  int alice_lock[2] = {-1, -1};
  ASSERT_EQ(pipe(alice_lock), 0);
  const pid_t alice = start_as(alice_, [&] {
    auto q = QueueProducer::open("alice_live");
    if (!q.ok()) return 1;
    ready.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(ready.wait());
  // The id of alice's lock, from her segment's header.
  SegmentHeader alice_header{};
  {
    const int fd = open(channel_path("alice_live").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pread(fd, &alice_header, sizeof alice_header, 0), static_cast<ssize_t>(sizeof alice_header));
    close(fd);
  }
  const int alice_set = alice_header.lock_semaphore_id;
  ASSERT_TRUE(semaphore_exists(alice_set));
  semid_ds ds{};
  ASSERT_EQ(semctl(root_set, 0, IPC_STAT, &ds), 0);
  const std::int64_t root_ctime = static_cast<std::int64_t>(ds.sem_ctime);
  // Bob forges two stale-looking segments, one naming each set (ids and stamps are public:
  // /proc/sysvipc/sem), with every key field the attacker can guess.
  ASSERT_EQ(as(bob_, [&] {
              int k = 0;
              for (const auto& [id, ctime, key] :
                   {std::tuple<int, std::int64_t, std::int32_t>{root_set, root_ctime, 0},
                    {alice_set, alice_header.lock_semaphore_ctime, alice_header.lock_semaphore_key}}) {
                const std::string path = "/dev/shm/shmring_chan.forged" + std::to_string(k++) + "_0";
                const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666);
                if (fd < 0) return 1;
                std::vector<char> page(8192, 0);
                SegmentHeader h{};
                h.magic = kSegmentMagic;
                h.layout_version = kSegmentLayoutVersion;
                h.header_size = kSegmentHeaderSize;
                h.user_size = 4096;
                h.lock_semaphore_id = id;
                h.lock_semaphore_ctime = ctime;
                h.lock_semaphore_key = key;
                h.state.store(static_cast<std::uint32_t>(SegmentState::kReady));
                std::memcpy(page.data(), &h, sizeof h);
                if (pwrite(fd, page.data(), page.size(), 0) != static_cast<ssize_t>(page.size())) return 2;
                close(fd);
              }
              return 0;
            }),
            0);
  // Root's gc, and alice opening channels (which sweeps), both look at the forgeries.
  const CommandResult r = cli(nullptr, {"gc"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(as(alice_, [&] {
              for (int i = 0; i < 10; ++i) {
                if (!QueueConsumer::open("alice_other_" + std::to_string(i)).ok()) return 1;
              }
              return 0;
            }),
            0);
  EXPECT_TRUE(semaphore_exists(root_set)) << "root's set was removed on the word of bob's file";
  EXPECT_TRUE(semaphore_exists(alice_set)) << "alice's live lock was removed on the word of bob's file";
  semctl(root_set, 0, IPC_RMID);
  stop(alice);
  close(alice_lock[0]);
  close(alice_lock[1]);
  unlink("/dev/shm/shmring_chan.forged0_0");
  unlink("/dev/shm/shmring_chan.forged1_0");
}

// Defect 4: bob, with no rights on alice's channel, cannot make her wait_fd fail or squat her
// lifeline: the names are random (never the same twice, nothing sequential to pre-create), the
// files are hers with her channel's writers-only mode, and every name bob could guess is taken
// first to no effect.
TEST_F(SecurityTest, WaitFileNamesCannotBeTakenFirst) {
  // Bob pre-creates everything the old scheme would have used next, and symlinks.
  ASSERT_EQ(as(bob_, [&] {
              for (int t = 0; t < 64; ++t) {
                char name[128];
                std::snprintf(name, sizeof name, "/dev/shm/shmring-w.%016x.%016x", 0, t);
                close(open(name, O_CREAT | O_WRONLY, 0666));
                std::snprintf(name, sizeof name, "/dev/shm/shmring-l.%016x.%016x", 0, t);
                if (symlink("/etc/passwd", name) != 0) return 1;
              }
              return 0;
            }),
            0);
  EXPECT_EQ(as(alice_, [&] {
              auto pub = TopicPublisher::open("alice_events");
              auto sub = TopicSubscriber::open("alice_events");
              if (!pub.ok() || !sub.ok()) return 1;
              if (sub->wait_fd() < 0 || pub->wait_fd() < 0) return 2;
              // Her files: random names, her own, mode 0600 (the channel's writers only).
              int seen = 0;
              for (const std::string& f : testing::dev_shm_entries("shmring-")) {
                struct stat st {};
                if (lstat(("/dev/shm/" + f).c_str(), &st) != 0 || st.st_uid != getuid()) continue;
                ++seen;
                if ((st.st_mode & 0777) != 0600) return 3;
                const std::string tail = f.substr(f.rfind('.') + 1);
                if (tail.size() != 32) return 4;  // 128 random bits, not a counter
              }
              if (seen < 4) return 5;  // 2 lifelines, 2 sockets, 1 liveness file
              if (pub->try_send(bytes_of("x")) != ChannelResult::kOk) return 6;
              pollfd p{sub->wait_fd(), POLLIN, 0};
              return poll(&p, 1, 5000) == 1 ? 0 : 7;
            }),
            0);
  for (const std::string& f : testing::dev_shm_entries("shmring-")) {
    struct stat st {};
    if (lstat(("/dev/shm/" + f).c_str(), &st) == 0 && st.st_uid == bob_.uid) unlink(("/dev/shm/" + f).c_str());
  }
}

// Defect 5: bob may read alice's 0644 channel. His read locks on every liveness byte of the
// segment file (the old place of the liveness locks) and his attempt at her liveness file must not
// lock her writers out.
TEST_F(SecurityTest, AReadOnlyUserCannotLockWritersOut) {
  Ready ready;
  Ready jammed;
  const pid_t alice = start_as(alice_, [&] {
    TopicOptions o;
    o.permissions = 0644;
    auto pub = TopicPublisher::open("alice_0644", o);
    if (!pub.ok()) return 1;
    ready.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(ready.wait());
  const pid_t jammer = start_as(bob_, [&] {
    const int fd = open(channel_path("alice_0644").c_str(), O_RDONLY);
    if (fd < 0) return 1;
    flock everything{};
    everything.l_type = F_RDLCK;
    everything.l_whence = SEEK_SET;
    everything.l_start = 0;
    everything.l_len = 0;  // to the end of every possible offset
    if (fcntl(fd, F_OFD_SETLK, &everything) != 0) return 2;
    // Her liveness file is 0600: bob cannot even open it.
    for (const std::string& f : testing::dev_shm_entries("shmring-a.")) {
      if (open(("/dev/shm/" + f).c_str(), O_RDONLY) >= 0) return 3;
    }
    jammed.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(jammed.wait());
  EXPECT_EQ(as(alice_, [&] {
              TopicOptions o;
              o.permissions = 0644;
              std::vector<TopicSubscriber> subs;
              for (int i = 0; i < 10; ++i) {
                auto sub = TopicSubscriber::open("alice_0644", o);
                if (!sub.ok()) return 1;
                subs.push_back(*std::move(sub));
              }
              return 0;
            }),
            0)
      << "bob's read locks made alice's peer slots look taken";
  stop(jammer);
  stop(alice);
}

// Defect 6: alice's keyed SystemSemaphore must not join a set bob made first under her key.
TEST_F(SecurityTest, AKeyedSemaphoreRefusesAnotherUsersSet) {
  const std::string key = "alice_mutex";
  ASSERT_EQ(as(bob_, [&] {
              const int id = semget(SystemSemaphore::sysv_key_for(key), 3, IPC_CREAT | IPC_EXCL | 0666);
              if (id < 0) return 1;
              unsigned short values[3] = {5, 0, 5};
              if (semctl(id, 0, SETALL, values) != 0) return 2;
              sembuf touch[2] = {{2, 1, 0}, {2, -1, 0}};
              return semop(id, touch, 2) == 0 ? 0 : 3;
            }),
            0);
  EXPECT_EQ(as(alice_, [&] {
              SystemSemaphore mutex(key, 1);
              return mutex.error() == SystemSemaphoreError::kPermissionDenied ? 0 : 1;
            }),
            0);
  const int id = semget(SystemSemaphore::sysv_key_for(key), 0, 0);
  if (id >= 0) semctl(id, 0, IPC_RMID);
}

// Defect 7: names another user chose reach root's terminal escaped, and JSON output is valid.
TEST_F(SecurityTest, UntrustedNamesAreEscapedForTheTerminalAndJson) {
  const std::string evil = "evil\x1b]0;owned\x07\x1b[2J\nfake line \xff\xfe end";
  Ready ready;
  const pid_t bob = start_as(bob_, [&] {
    TopicOptions o;
    o.permissions = 0644;  // others may read it, so root's tools and stat see it
    auto pub = TopicPublisher::open(evil, o);
    if (!pub.ok()) return 1;
    ready.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(ready.wait());
  for (const std::vector<std::string>& words :
       {std::vector<std::string>{"ls"}, {"ls", "--json"}, {"gc", "--dry-run"}, {"gc", "--dry-run", "--json"},
        {"stat", evil}, {"stat", evil, "--json"}}) {
    const CommandResult r = cli(nullptr, words);
    const std::string all = r.out + r.err;
    EXPECT_EQ(all.find('\x1b'), std::string::npos) << words[0] << ": an escape sequence reached the terminal";
    EXPECT_EQ(all.find('\x07'), std::string::npos) << words[0];
    EXPECT_EQ(all.find("\nfake line"), std::string::npos) << words[0] << ": a forged line";
    EXPECT_EQ(all.find('\xff'), std::string::npos) << words[0] << ": bytes that are not UTF-8";
    if (words.back() == "--json") {
      // Every line is a JSON object Python's strict parser accepts (valid UTF-8 included).
      const CommandResult check = testing::run_command(
          {"/usr/bin/python3", "-c",
           "import sys, json\n"
           "for line in sys.stdin.buffer.read().decode('utf-8').splitlines():\n"
           "    json.loads(line)\n"},
          r.out);
      EXPECT_EQ(check.status, 0) << words[0] << " --json: " << check.err;
    }
  }
  stop(bob);
}

// Defect 9: results that tell the truth. A squatted empty file gives a clear error naming its
// owner; a group member's rm of a channel it cannot remove says so; gc and top leave small files
// that are not shmring's alone; exhausted semaphore sets are an out-of-resources error.
TEST_F(SecurityTest, ResultsSayWhatHappened) {
  // An empty 0666 file of bob's under alice's channel name.
  ASSERT_EQ(as(bob_, [&] { return close(open(channel_path("alice_empty").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0666)); }), 0);
  EXPECT_EQ(as(alice_, [&] {
              auto q = QueueProducer::open("alice_empty");
              if (q.ok()) return 1;
              const std::string message(q.status().message());
              std::fprintf(stderr, "alice's open of a squatted empty file: %s\n", message.c_str());
              if (message.find("races") != std::string::npos) return 2;
              return message.find(bob_.name) != std::string::npos ? 0 : 3;
            }),
            0);
  unlink(channel_path("alice_empty").c_str());

  // A group channel of alice's, 0660: another member may use it, but not remove its name (sticky
  // /dev/shm): rm must say so instead of "removed".
  Ready ready;
  const pid_t owner = start_as(alice_, [&] {
    QueueOptions o;
    o.permissions = 0666;
    auto q = QueueProducer::open("alice_group", o);
    if (!q.ok()) return 1;
    ready.signal();
    for (;;) pause();
  });
  ASSERT_TRUE(ready.wait());
  const CommandResult rm = cli(&bob_, {"rm", "alice_group"});
  EXPECT_NE(rm.status, 0) << rm.out;
  EXPECT_EQ(rm.out.find("removed channel"), std::string::npos) << rm.out;
  EXPECT_EQ(access(channel_path("alice_group").c_str(), F_OK), 0);
  stop(owner);

  // Small files that are not segments, under shmring's prefix: gc (root) keeps them.
  for (const char* name : {"/dev/shm/shmring_notes", "/dev/shm/shmring_chan.tiny"}) {
    std::ofstream(name) << "not a segment";
  }
  const CommandResult gc = cli(nullptr, {"gc"});
  EXPECT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(access("/dev/shm/shmring_notes", F_OK), 0) << "gc removed a file that is not shmring's";
  EXPECT_EQ(access("/dev/shm/shmring_chan.tiny", F_OK), 0);
  unlink("/dev/shm/shmring_notes");
  unlink("/dev/shm/shmring_chan.tiny");

  // Semaphore sets used up (this IPC namespace's limit lowered): creating a segment says so.
  std::string saved;
  {
    std::ifstream in("/proc/sys/kernel/sem");
    std::getline(in, saved);
  }
  std::istringstream fields(saved);
  long semmsl = 0, semmns = 0, semopm = 0, semmni = 0;
  fields >> semmsl >> semmns >> semopm >> semmni;
  int in_use = 0;
  {
    std::ifstream sets("/proc/sysvipc/sem");
    std::string line;
    std::getline(sets, line);
    while (std::getline(sets, line)) ++in_use;
  }
  std::ofstream("/proc/sys/kernel/sem") << semmsl << " " << semmns << " " << semopm << " " << in_use;
  SharedMemory shm("exhausted");
  EXPECT_FALSE(shm.create(4096));
  EXPECT_EQ(shm.error(), SharedMemoryError::kOutOfResources) << shm.error_string();
  std::ofstream("/proc/sys/kernel/sem") << saved;
}

}  // namespace
}  // namespace shmring
