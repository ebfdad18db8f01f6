// The process's one ZeroMQ context (made on first use, never torn down: sockets are closed with
// linger 0 by their carriers, and a context term at exit could only wait).
#pragma once

namespace shmring::bridge {
void* zmq_context();
}  // namespace shmring::bridge
