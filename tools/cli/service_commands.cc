// `shmring call` and `shmring serve`: services (transport/include/shmring/transport/service.h) from
// a shell; and what `ls`, `stat` and `top` show of a service (service_view.h).
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"
#include "service_view.h"
#include "shmring/transport/service.h"
#include "text.h"

namespace shmring::cli {

namespace {

volatile sig_atomic_t g_stop = 0;
void on_stop(int) { g_stop = 1; }

void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// The limits --max-request / --max-response / --max-in-flight give a service this call creates.
struct Limits {
  std::uint64_t max_request = 0;
  std::uint64_t max_response = 0;
  std::int64_t max_in_flight = 0;
  mode_t mode = 0600;
};

void add_limits(CLI::App& app, Limits* l) {
  add_size(app, "--max-request", &l->max_request, 1, std::uint64_t{1} << 30,
           "bytes per request of a service this creates (default 256)");
  add_size(app, "--max-response", &l->max_response, 1, std::uint64_t{1} << 30,
           "bytes per response of a service this creates (default 256)");
  add_integer(app, "--max-in-flight", &l->max_in_flight, 0, 4096,
              "requests outstanding per client of a service this creates (default 16)");
  add_mode(app, "--mode", &l->mode, "permission bits of a service this creates (default 600)");
}

ServiceOptions options_from(const Limits& l) {
  ServiceOptions o;
  o.max_request = l.max_request;
  o.max_response = l.max_response;
  o.max_in_flight = static_cast<std::uint32_t>(l.max_in_flight);
  o.permissions = l.mode;
  return o;
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

void print_response(const std::string& format, std::span<const std::byte> data, std::uint64_t id, bool final) {
  const auto* text = reinterpret_cast<const char*>(data.data());
  if (format == "hex") {
    for (const std::byte b : data) std::printf("%02x", static_cast<unsigned>(b));
    std::printf("\n");
  } else if (format == "json") {
    std::printf("{\"id\":%llu,\"final\":%s,\"bytes\":%zu,\"text\":%s}\n", static_cast<unsigned long long>(id),
                final ? "true" : "false", data.size(), json_string(std::string(text, data.size())).c_str());
  } else {
    std::fwrite(text, 1, data.size(), stdout);
    std::printf("\n");
  }
  std::fflush(stdout);
}

// --- call --------------------------------------------------------------------------------------------

struct CallOptions {
  std::string name;
  std::chrono::milliseconds timeout{5000};
  std::string format = "text";
  bool create = false;
  Limits limits;
};

int run_call(const CallOptions& o) {
  ServiceOptions options = options_from(o.limits);
  options.create = o.create;
  options.request_timeout = o.timeout.count() > 0 ? std::chrono::nanoseconds(o.timeout) : std::chrono::hours(24);
  absl::StatusOr<ServiceClient> client = ServiceClient::open(o.name, options);
  if (!client.ok()) return report_error("call", o.name + ": " + std::string(client.status().message()));
  catch_stop_signals();
  std::string line;
  std::uint64_t calls = 0;
  std::vector<std::byte> buffer(client->max_response());
  while (!g_stop && std::getline(std::cin, line)) {
    if (line.size() > client->max_request()) {
      return report_error("call", o.name + ": request " + std::to_string(calls + 1) + ": " +
                                      std::to_string(line.size()) + " bytes exceed max_request " +
                                      std::to_string(client->max_request()));
    }
    PendingResponse pending = client->send_request(bytes_of(line), options.request_timeout);
    if (!pending.ok()) {
      return report_error("call", o.name + ": request " + std::to_string(calls + 1) + ": " +
                                      std::string(to_string(pending.result())));
    }
    ++calls;
    // Every response (a stream ends with the final one), waiting in slices so Ctrl-C is heard.
    while (!pending.done() && !g_stop) {
      std::size_t n = 0;
      const ChannelResult r = pending.receive(buffer, &n, std::chrono::milliseconds(100));
      if (r == ChannelResult::kTimedOut && !pending.done()) continue;
      if (r != ChannelResult::kOk) {
        const std::string why = r == ChannelResult::kPeerGone ? "no answer (its server died or dropped it)"
                                : r == ChannelResult::kTimedOut ? "no answer before its deadline"
                                                                : std::string(to_string(r));
        return report_error("call", o.name + ": request " + std::to_string(calls) + ": " + why);
      }
      print_response(o.format, std::span<const std::byte>(buffer.data(), n), pending.id(), pending.done());
    }
  }
  return 0;
}

// --- serve -------------------------------------------------------------------------------------------

struct ServeOptions {
  std::string name;
  bool echo = false;
  bool print = false;
  std::int64_t count = 0;
  std::chrono::milliseconds timeout{0};
  Limits limits;
};

int run_serve(const ServeOptions& o) {
  if (!o.echo) return report_error("serve", "how to answer? --echo (the only answer for now)", 2);
  absl::StatusOr<ServiceServer> server = ServiceServer::open(o.name, options_from(o.limits));
  if (!server.ok()) return report_error("serve", o.name + ": " + std::string(server.status().message()));
  catch_stop_signals();
  const auto deadline = o.timeout.count() > 0 ? std::chrono::steady_clock::now() + o.timeout
                                              : std::chrono::steady_clock::time_point::max();
  std::uint64_t served = 0;
  while (!g_stop && (o.count == 0 || served < static_cast<std::uint64_t>(o.count)) &&
         std::chrono::steady_clock::now() < deadline) {
    ActiveRequest request = server->receive_request(std::chrono::milliseconds(100));
    if (!request.ok()) {
      if (request.result() == ChannelResult::kTimedOut) continue;
      return report_error("serve", o.name + ": " + std::string(to_string(request.result())));
    }
    if (o.print) print_response("text", request.data(), request.id(), true);
    if (request.data().size() > server->max_response()) {
      request.drop();  // cannot echo it: the client hears kPeerGone
      continue;
    }
    const ChannelResult r = request.respond(request.data());
    if (r != ChannelResult::kOk) std::fprintf(stderr, "shmring serve: %s: request %llu: %s\n", o.name.c_str(),
                                              static_cast<unsigned long long>(request.id()),
                                              std::string(to_string(r)).c_str());
    ++served;
  }
  std::fprintf(stderr, "shmring serve: %s: %llu request(s) answered\n", o.name.c_str(),
               static_cast<unsigned long long>(served));
  return 0;
}

}  // namespace

// --- what ls, stat and top show ----------------------------------------------------------------------

std::string service_summary(const std::string& name) {
  absl::StatusOr<ServiceStats> s = read_service_stats(name);
  if (!s.ok()) return "";
  return std::to_string(s->servers) + " server(s), " + std::to_string(s->clients) + " client(s), " +
         std::to_string(s->in_flight) + " in flight, " + std::to_string(s->served) + " served, " +
         std::to_string(s->redelivered) + " redelivered, " + std::to_string(s->expired) + " expired";
}

std::string service_json(const std::string& name) {
  absl::StatusOr<ServiceStats> s = read_service_stats(name);
  if (!s.ok()) return "";
  return ",\"service\":{\"servers\":" + std::to_string(s->servers) + ",\"clients\":" + std::to_string(s->clients) +
         ",\"in_flight\":" + std::to_string(s->in_flight) + ",\"queued\":" + std::to_string(s->queued) +
         ",\"held\":" + std::to_string(s->held) + ",\"requests\":" + std::to_string(s->requests) +
         ",\"served\":" + std::to_string(s->served) + ",\"redelivered\":" + std::to_string(s->redelivered) +
         ",\"expired\":" + std::to_string(s->expired) + ",\"cancelled\":" + std::to_string(s->cancelled) +
         ",\"peer_gone\":" + std::to_string(s->peer_gone) +
         ",\"clients_reclaimed\":" + std::to_string(s->clients_reclaimed) +
         ",\"max_request\":" + std::to_string(s->max_request) + ",\"max_response\":" + std::to_string(s->max_response) +
         ",\"max_in_flight\":" + std::to_string(s->max_in_flight) +
         ",\"response_depth\":" + std::to_string(s->response_depth) +
         ",\"max_clients\":" + std::to_string(s->max_clients) + ",\"max_servers\":" + std::to_string(s->max_servers) +
         ",\"max_active\":" + std::to_string(s->max_active) + "}";
}

void print_service(const std::string& name, const ServiceStats* before, double seconds) {
  absl::StatusOr<ServiceStats> s = read_service_stats(name);
  if (!s.ok()) return;
  auto rate = [&](std::uint64_t now, std::uint64_t then) {
    char text[32];
    const double r = seconds > 0 && now >= then ? static_cast<double>(now - then) / seconds : 0;
    std::snprintf(text, sizeof text, "%.1f/s", r);
    return std::string(before != nullptr ? text : "-");
  };
  std::printf("  service: %u server(s), %u client(s); limits: request %llu B, response %llu B, %u in flight "
              "per client, %u buffered per request, %u held per server\n",
              s->servers, s->clients, static_cast<unsigned long long>(s->max_request),
              static_cast<unsigned long long>(s->max_response), s->max_in_flight, s->response_depth, s->max_active);
  std::printf("  requests %llu (%s)  served %llu (%s)  in flight %llu (queued %llu, held %llu)\n",
              static_cast<unsigned long long>(s->requests),
              rate(s->requests, before != nullptr ? before->requests : 0).c_str(),
              static_cast<unsigned long long>(s->served),
              rate(s->served, before != nullptr ? before->served : 0).c_str(),
              static_cast<unsigned long long>(s->in_flight), static_cast<unsigned long long>(s->queued),
              static_cast<unsigned long long>(s->held));
  std::printf("  redelivered %llu  expired %llu  cancelled %llu  ended without an answer %llu  "
              "client areas reclaimed %llu\n",
              static_cast<unsigned long long>(s->redelivered), static_cast<unsigned long long>(s->expired),
              static_cast<unsigned long long>(s->cancelled), static_cast<unsigned long long>(s->peer_gone),
              static_cast<unsigned long long>(s->clients_reclaimed));
}

// --- the verbs -------------------------------------------------------------------------------------

Verb add_call(CLI::App& root) {
  auto o = std::make_shared<CallOptions>();
  CLI::App* app = root.add_subcommand("call", "send stdin lines to a service as requests, print the responses");
  set_long_description(app,
      "Sends each line read from stdin (without its newline) to the service as one request and\n"
      "prints its responses (a stream: each of them, the final one last) before the next line.\n"
      "A request without an answer (its server died and it was at_most_once, it was dropped, or\n"
      "its deadline passed) is exit 1. Without --create the service must exist.");
  app->add_option("NAME", o->name, "the service")->required();
  add_duration(*app, "--timeout", &o->timeout, BareUnit::kSeconds, std::chrono::hours(24 * 365),
               "each request's deadline (default 5s; 0: a day; a bare number is in s)");
  add_choice(*app, "--format", &o->format, {"text", "hex", "json"}, "text (default), hex or json (with ids)");
  app->add_flag("--create", o->create, "create the service if it does not exist");
  add_limits(*app, &o->limits);
  return {app, [o] { return run_call(*o); }};
}

Verb add_serve(CLI::App& root) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* app = root.add_subcommand("serve", "answer a service's requests (--echo: with themselves)");
  set_long_description(app,
      "Serves the service, creating it if needed: takes each request (competing with any other\n"
      "servers) and answers it with itself (--echo). Stops after --count requests, when --timeout\n"
      "passes, or on Ctrl-C; requests it holds then go to another server.");
  app->add_option("NAME", o->name, "the service")->required();
  app->add_flag("--echo", o->echo, "answer each request with its own bytes");
  app->add_flag("--print", o->print, "also print each request to stdout");
  add_integer(*app, "--count", &o->count, 0, std::int64_t{1} << 50, "stop after N requests (default 0: no limit)");
  add_duration(*app, "--timeout", &o->timeout, BareUnit::kSeconds, std::chrono::hours(24 * 365),
               "stop after this long (default 0: no limit; a bare number is in s)");
  add_limits(*app, &o->limits);
  return {app, [o] { return run_serve(*o); }};
}

}  // namespace shmring::cli
