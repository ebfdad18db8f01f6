// gRPC over a Unix socket (`grpc`): Debian's libgrpc++ through its generic API (raw byte buffers,
// no protobuf codegen), unary calls to "/shmring.Bench/Echo". The client uses a GenericStub and a
// completion queue (pingpong: one call at a time; calls mode: `depth` in flight); the server an
// AsyncGenericService on one completion queue, answering each call with its request. Blocking:
// gRPC waits in its completion queues (epoll). The socket lives in a private directory under /tmp.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <vector>

#include "transports.h"

namespace shmring::bench {
namespace {

constexpr const char* kMethod = "/shmring.Bench/Echo";

grpc::ByteBuffer buffer_of(const std::byte* data, std::size_t size) {
  grpc::Slice slice(data, size);
  return grpc::ByteBuffer(&slice, 1);
}

bool copy_out(const grpc::ByteBuffer& buffer, std::byte* data, std::size_t size) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  std::size_t at = 0;
  for (const grpc::Slice& s : slices) {
    if (at + s.size() > size) return false;
    std::memcpy(data + at, s.begin(), s.size());
    at += s.size();
  }
  return at == size;
}

std::chrono::system_clock::time_point in(std::chrono::milliseconds d) { return std::chrono::system_clock::now() + d; }

class GrpcClient final : public Endpoint {
 public:
  explicit GrpcClient(const std::string& target)
      : channel_(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())), stub_(channel_) {}
  bool connect() { return channel_->WaitForConnected(in(std::chrono::seconds(20))); }

  bool send(const std::byte* data, std::size_t size) override {
    pending_ = start(data, size);
    return pending_ != nullptr;
  }
  bool receive(std::byte* data, std::size_t size) override {
    if (pending_ == nullptr) return false;
    Call* done = next();
    const bool ok = done == pending_.get() && done->status.ok() && copy_out(done->response, data, size);
    pending_.reset();
    return ok;
  }
  std::uint64_t make_calls(std::uint64_t count, int depth, std::size_t size) override {
    std::vector<std::byte> message(std::max<std::size_t>(size, 8)), answer(message.size());
    std::deque<std::unique_ptr<Call>> out;
    std::uint64_t sent = 0, answered = 0;
    while (answered < count) {
      while (sent < count && out.size() < static_cast<std::size_t>(std::max(depth, 1))) {
        std::memcpy(message.data(), &sent, sizeof sent);
        out.push_back(start(message.data(), size));
        out.back()->number = sent++;
      }
      Call* done = next();
      if (done == nullptr || !done->status.ok() || !copy_out(done->response, answer.data(), size)) return answered;
      std::uint64_t got = 0;
      std::memcpy(&got, answer.data(), std::min<std::size_t>(size, 8));
      if (size >= 8 && got != done->number) return answered;
      for (auto it = out.begin(); it != out.end(); ++it) {
        if (it->get() == done) {
          out.erase(it);
          break;
        }
      }
      ++answered;
    }
    return answered;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::uint64_t number = 0;
  };
  std::unique_ptr<Call> start(const std::byte* data, std::size_t size) {
    auto call = std::make_unique<Call>();
    call->reader = stub_.PrepareUnaryCall(&call->context, kMethod, buffer_of(data, size), &queue_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call.get());
    return call;
  }
  Call* next() {
    void* tag = nullptr;
    bool ok = false;
    if (!queue_.Next(&tag, &ok) || !ok) return nullptr;
    return static_cast<Call*>(tag);
  }

  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  grpc::CompletionQueue queue_;
  std::unique_ptr<Call> pending_;
};

class GrpcServer final : public Endpoint {
 public:
  explicit GrpcServer(const std::string& target, int outstanding) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(target, grpc::InsecureServerCredentials());
    builder.RegisterAsyncGenericService(&service_);
    queue_ = builder.AddCompletionQueue();
    server_ = builder.BuildAndStart();
    for (int i = 0; i < outstanding && server_ != nullptr; ++i) request_one();
  }
  ~GrpcServer() override {
    if (server_ != nullptr) server_->Shutdown(in(std::chrono::milliseconds(100)));
    if (queue_ != nullptr) {
      queue_->Shutdown();
      void* tag = nullptr;
      bool ok = false;
      while (queue_->Next(&tag, &ok)) delete static_cast<Call*>(tag);
    }
  }
  bool started() const { return server_ != nullptr; }

  bool receive(std::byte* data, std::size_t size) override {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < end) {
      if (Call* call = step(std::chrono::milliseconds(100))) {
        current_ = call;
        return copy_out(call->request, data, size);
      }
    }
    return false;
  }
  bool send(const std::byte* data, std::size_t size) override {
    if (current_ == nullptr) return false;
    answer(current_, buffer_of(data, size));
    current_ = nullptr;
    return true;
  }
  bool serve_calls(const std::function<bool()>& stop, std::size_t) override {
    while (!stop()) {
      if (Call* call = step(std::chrono::milliseconds(5))) answer(call, call->request);
    }
    return true;
  }

 private:
  struct Call {
    enum State { kRequested, kReading, kFinishing } state = kRequested;
    grpc::GenericServerContext context;
    grpc::GenericServerAsyncReaderWriter stream{&context};
    grpc::ByteBuffer request;
  };
  void request_one() {
    auto* call = new Call;
    service_.RequestCall(&call->context, &call->stream, queue_.get(), queue_.get(), call);
  }
  void answer(Call* call, const grpc::ByteBuffer& response) {
    call->state = Call::kFinishing;
    call->stream.WriteAndFinish(response, grpc::WriteOptions(), grpc::Status::OK, call);
  }
  // Takes one completion (up to `timeout`) and moves its call on: a new call reads its request, a
  // read request is returned (to be answered), a finished call is deleted. nullptr: nothing to
  // answer yet.
  Call* step(std::chrono::milliseconds timeout) {
    void* tag = nullptr;
    bool ok = false;
    if (queue_->AsyncNext(&tag, &ok, in(timeout)) != grpc::CompletionQueue::GOT_EVENT) return nullptr;
    auto* call = static_cast<Call*>(tag);
    if (call->state == Call::kRequested && ok) {
      request_one();  // the next call can come meanwhile
      call->state = Call::kReading;
      call->stream.Read(&call->request, call);
      return nullptr;
    }
    if (call->state == Call::kReading && ok) return call;
    if (call->state == Call::kRequested) return nullptr;  // shutting down
    delete call;  // finished, or its client went away
    return nullptr;
  }

  grpc::AsyncGenericService service_;
  std::unique_ptr<grpc::ServerCompletionQueue> queue_;
  std::unique_ptr<grpc::Server> server_;
  Call* current_ = nullptr;
};

class GrpcTransport final : public IpcTransport {
 public:
  std::string wait_description(WaitMode) const override {
    return "completion queues (generic unary calls over a Unix socket)";
  }
  bool supports(const std::string& mode) const override {
    return mode == "pingpong" || mode == "wake" || mode == "calls";
  }
  absl::Status prepare(const BenchConfig&) override {
    char dir_template[] = "/tmp/shmring_bench_grpc_XXXXXX";
    if (mkdtemp(dir_template) == nullptr) return absl::InternalError("mkdtemp");
    dir_ = dir_template;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Endpoint>> open(int side, const BenchConfig& config) override {
    setenv("GRPC_VERBOSITY", "ERROR", 1);
    const bool calls = config.mode == "calls";
    const bool client = calls ? side < config.clients : side == 0;
    if (client) {
      // A client calls the servers in turn (calls mode: client i talks to server i % servers).
      const int server = calls ? side % config.servers : 0;
      auto c = std::make_unique<GrpcClient>(target(server));
      if (!c->connect()) return absl::DeadlineExceededError("gRPC client never connected");
      return std::unique_ptr<Endpoint>(std::move(c));
    }
    auto s = std::make_unique<GrpcServer>(target(calls ? side - config.clients : 0), calls ? 4 * config.depth : 2);
    if (!s->started()) return absl::InternalError("gRPC server did not start on " + target(0));
    return std::unique_ptr<Endpoint>(std::move(s));
  }
  void cleanup() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

 private:
  std::string target(int server) const { return "unix:" + dir_ + "/grpc-" + std::to_string(server); }
  std::string dir_;
};

}  // namespace

std::unique_ptr<IpcTransport> make_grpc_transport() { return std::make_unique<GrpcTransport>(); }

}  // namespace shmring::bench
