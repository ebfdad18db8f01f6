// Channels on this machine through the C API: counters (shmring_read_stats), listing and removal;
// and the library's version.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "handles.h"

using namespace shmring;
using namespace shmring::c;

// The names list_channels() found, owned by the list handle.
struct shmring_channel_list {
  std::vector<std::string> names;
};

extern "C" {

const char* shmring_version(void) { return SHMRING_VERSION_STRING; }

shmring_status_t shmring_read_stats(const char* name, shmring_channel_stats_t* stats,
                                    shmring_peer_stats_t* peers, size_t peers_capacity) {
  if (name == nullptr) return null_argument(__func__, "name");
  if (stats == nullptr) return null_argument(__func__, "stats");
  if (peers == nullptr && peers_capacity != 0) return null_argument(__func__, "peers (with a non-zero capacity)");
  try {
    // The fields up to peer_count are all this version has; a smaller struct is an older header
    // that never existed (version 1 is the first), so it is refused rather than guessed at.
    if (stats->struct_size < sizeof(shmring_channel_stats_t)) {
      return fail(__func__, SHMRING_INVALID_ARGUMENT,
                  "stats->struct_size is " + std::to_string(stats->struct_size) +
                      ", want sizeof(shmring_channel_stats_t) = " + std::to_string(sizeof(shmring_channel_stats_t)));
    }
    absl::StatusOr<ChannelStats> read = read_stats(name);
    if (!read.ok()) return fail(__func__, read.status());
    const std::size_t caller_size = stats->struct_size;
    std::memset(stats, 0, caller_size);
    stats->struct_size = caller_size;
    const std::size_t n = std::min(read->name.size(), sizeof stats->name - 1);
    std::memcpy(stats->name, read->name.data(), n);
    stats->kind = static_cast<std::int32_t>(read->kind);
    stats->lossless = read->lossless;
    stats->capacity = read->capacity;
    stats->max_message = read->max_message;
    stats->max_peers = read->max_peers;
    stats->attachments = read->attachments;
    stats->sent = read->sent;
    stats->received = read->received;
    stats->lost = read->lost;
    stats->blocked_ns = read->blocked_ns;
    stats->peers_reclaimed = read->peers_reclaimed;
    stats->claims_skipped = read->claims_skipped;
    stats->items_redelivered = read->items_redelivered;
    stats->evictions = read->evictions;
    stats->depth = read->depth;
    stats->receivers_parked = read->receivers_parked;
    stats->senders_parked = read->senders_parked;
    stats->receivers_armed = read->receivers_armed;
    stats->senders_armed = read->senders_armed;
    stats->peer_count = static_cast<std::uint32_t>(read->peers.size());
    for (std::size_t i = 0; i < read->peers.size() && i < peers_capacity; ++i) peer_stats_to_c(read->peers[i], &peers[i]);
    return SHMRING_OK;
  } catch (const std::bad_alloc&) {
    return fail(__func__, SHMRING_OUT_OF_MEMORY, "out of memory");
  } catch (...) {
    return fail(__func__, SHMRING_INTERNAL, "unexpected C++ exception");
  }
}

shmring_status_t shmring_list_channels(shmring_channel_list_t** list) {
  if (list == nullptr) return null_argument(__func__, "list");
  *list = nullptr;
  try {
    *list = new shmring_channel_list{list_channels()};
    return SHMRING_OK;
  } catch (const std::bad_alloc&) {
    return fail(__func__, SHMRING_OUT_OF_MEMORY, "out of memory");
  } catch (...) {
    return fail(__func__, SHMRING_INTERNAL, "unexpected C++ exception");
  }
}

size_t shmring_channel_list_size(const shmring_channel_list_t* list) {
  return list != nullptr ? list->names.size() : 0;
}

const char* shmring_channel_list_name(const shmring_channel_list_t* list, size_t index) {
  if (list == nullptr || index >= list->names.size()) return nullptr;
  return list->names[index].c_str();
}

void shmring_channel_list_destroy(shmring_channel_list_t* list) { delete list; }

shmring_status_t shmring_remove_channel(const char* name) {
  if (name == nullptr) return null_argument(__func__, "name");
  try {
    const absl::Status removed = remove_channel(name);
    return removed.ok() ? SHMRING_OK : fail(__func__, removed);
  } catch (const std::bad_alloc&) {
    return fail(__func__, SHMRING_OUT_OF_MEMORY, "out of memory");
  } catch (...) {
    return fail(__func__, SHMRING_INTERNAL, "unexpected C++ exception");
  }
}

}  // extern "C"
