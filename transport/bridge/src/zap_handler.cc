#include "zap_handler.h"

#include <pthread.h>
#include <signal.h>
#include <zmq.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>

#include "shmring/core/detail/message.h"
#include "zmq_context.h"

namespace shmring::bridge {

using shmring::detail::cat;
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, std::set<std::string>> domains;  // domain -> allowed keys (Z85)
  std::uint64_t next = 0;
  bool started = false;
};

Registry& registry() {
  static Registry* r = new Registry;  // lives as long as the handler thread
  return *r;
}

// Whether a client key (32 binary bytes) may talk to a server of `domain`.
bool allowed(const std::string& domain, const std::string& mechanism, const std::string& key) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.domains.find(domain);
  if (it == r.domains.end() || mechanism != "CURVE") return false;
  if (it->second.empty()) return true;
  if (key.size() != 32) return false;
  char text[41];
  if (zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(key.data()), 32) == nullptr) return false;
  return it->second.count(text) != 0;
}

std::string receive_part(void* socket, bool* more) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  std::string out;
  if (zmq_msg_recv(&m, socket, 0) >= 0) {
    out.assign(static_cast<const char*>(zmq_msg_data(&m)), zmq_msg_size(&m));
    *more = zmq_msg_more(&m) != 0;
  } else {
    *more = false;
  }
  zmq_msg_close(&m);
  return out;
}

// Request: version, request id, domain, address, identity, mechanism, credentials...
// Reply: version, request id, status code, status text, user id, metadata.
void serve(void* socket) {
  for (;;) {
    std::vector<std::string> request;
    bool more = true;
    while (more) request.push_back(receive_part(socket, &more));
    // Anything but a full request is refused (REP owes every request an answer).
    const bool ok = request.size() >= 6 &&
                    allowed(request[2], request[5], request.size() > 6 ? request[6] : std::string());
    const std::string reply[] = {"1.0", request.size() > 1 ? request[1] : std::string(), ok ? "200" : "400",
                                 ok ? "OK" : "client key not authorised", "", ""};
    for (std::size_t i = 0; i < 6; ++i) {
      zmq_send(socket, reply[i].data(), reply[i].size(), i < 5 ? ZMQ_SNDMORE : 0);
    }
  }
}

}  // namespace

void* zmq_context() {
  static void* context = zmq_ctx_new();
  return context;
}

std::string register_zap_domain(const std::vector<std::string>& authorized_keys) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!r.started) {
    void* socket = zmq_socket(zmq_context(), ZMQ_REP);
    zmq_bind(socket, "inproc://zeromq.zap.01");
    // Signals go to other threads (a bridge's SIGINT handler runs where the bridge lives).
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    std::thread(serve, socket).detach();  // serves for the life of the process
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    r.started = true;
  }
  std::string domain = cat("shmring-bridge-", r.next++);
  r.domains[domain] = std::set<std::string>(authorized_keys.begin(), authorized_keys.end());
  return domain;
}

}  // namespace shmring::bridge
