// Channel and endpoint counters as Python dicts (the keys are ChannelStats' and PeerStats' field
// names), and the module-level inspection calls.
#pragma once

#include <pybind11/pybind11.h>

#include "shmring/transport/channel.h"

namespace shmring::python {

pybind11::dict peer_stats_dict(const PeerStats& p);
pybind11::dict channel_stats_dict(const ChannelStats& s);

// list_channels, stats, remove_channel, collect_garbage.
void bind_inspection(pybind11::module_& m);

}  // namespace shmring::python
