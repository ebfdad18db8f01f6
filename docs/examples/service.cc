// Ask and answer: clients call competing servers; each request is answered by exactly one of them,
// and the answer finds its way back to the request that asked (no correlation id to encode).
#include <cctype>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "shmring/transport/service.h"

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

int main() {
  using namespace std::chrono_literals;
  // A server (run any number, in any processes: they compete for the requests; one that dies
  // holding a request has it redelivered to another).
  std::thread server([] {
    auto service = shmring::ServiceServer::open("upper");
    if (!service.ok()) return;
    for (int served = 0; served < 2;) {
      shmring::ActiveRequest request = service->receive_request(1s);  // the request, in place
      if (!request.ok()) continue;
      std::string text(reinterpret_cast<const char*>(request.data().data()), request.data().size());
      for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      request.respond(bytes(text));  // the final (here: the only) response
      ++served;
    }
  });
  auto client = shmring::ServiceClient::open("upper");
  if (!client.ok()) return 1;
  std::byte answer[256];
  std::size_t n = 0;
  // One call: send, wait for the answer, all within 1 s.
  if (client->call(bytes("hello"), answer, &n, 1s) != shmring::ChannelResult::kOk) return 1;
  std::printf("%.*s\n", static_cast<int>(n), reinterpret_cast<const char*>(answer));
  // Or keep the pending response (up to max_in_flight of them; dropping one cancels it).
  shmring::PendingResponse pending = client->send_request(bytes("world"), 1s);
  if (pending.receive(answer, &n, 1s) != shmring::ChannelResult::kOk) return 1;
  std::printf("%.*s (request %llu)\n", static_cast<int>(n), reinterpret_cast<const char*>(answer),
              static_cast<unsigned long long>(pending.id()));
  server.join();
  return 0;
}
