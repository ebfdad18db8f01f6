// Factories of the transports the cross-process benchmark compares (see ipc_transport.h).
#pragma once
#include <memory>

#include "ipc_transport.h"

namespace shmring::bench {
std::unique_ptr<IpcTransport> make_pipe_transport();
std::unique_ptr<IpcTransport> make_uds_transport();
std::unique_ptr<IpcTransport> make_boost_mq_transport();
std::unique_ptr<IpcTransport> make_zmq_transport();      // nullptr unless built with ZeroMQ
std::unique_ptr<IpcTransport> make_iceoryx_transport();  // nullptr unless built with iceoryx
std::unique_ptr<IpcTransport> make_floor_transport();
std::unique_ptr<IpcTransport> make_shmring_spsc_transport();
std::unique_ptr<IpcTransport> make_shmring_topic_transport(bool zero_copy);
std::unique_ptr<IpcTransport> make_shmring_queue_transport(bool zero_copy);
std::unique_ptr<IpcTransport> make_shmring_frames_transport(bool zero_copy);
std::unique_ptr<IpcTransport> make_shmring_service_transport(bool zero_copy);
std::unique_ptr<IpcTransport> make_zmq_rr_transport();      // nullptr unless built with ZeroMQ
std::unique_ptr<IpcTransport> make_grpc_transport();        // nullptr unless built with gRPC
std::unique_ptr<IpcTransport> make_iceoryx_rr_transport();  // nullptr unless built with iceoryx
}  // namespace shmring::bench
