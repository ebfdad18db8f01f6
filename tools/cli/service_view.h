// What `ls`, `stat` and `top` show of a service beyond every channel's counters
// (service_commands.cc; read_service_stats in transport/include/shmring/transport/service.h).
#pragma once

#include <string>

#include "shmring/transport/service.h"

namespace shmring::cli {

// "2 server(s), 3 client(s), 5 in flight, 120 served, 1 redelivered, 0 expired"; "" if `name`
// is not a readable service.
std::string service_summary(const std::string& name);
// ",\"service\":{...}" for a JSON object; "" if `name` is not a readable service.
std::string service_json(const std::string& name);
// The service's lines of `shmring stat` (rates against `before`, taken `seconds` earlier).
void print_service(const std::string& name, const ServiceStats* before, double seconds);

}  // namespace shmring::cli
