// Built instead of grpc_transport.cc when gRPC is not installed: the grpc peer is reported skipped.
#include "transports.h"

namespace shmring::bench {
std::unique_ptr<IpcTransport> make_grpc_transport() { return nullptr; }
}  // namespace shmring::bench
