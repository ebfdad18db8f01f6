// The bridge: carries shmring channels between hosts over a network carrier (carrier.h; ZeroMQ).
//
// An export reads local channels and sends what they carry to every import connected to it; an
// import is the local publisher (topics, frames) or producer (queues) of same-named channels on
// its host, so local subscribers and consumers need no change: they open the channel by name.
// One Bridge runs any number of exports and imports in one thread. docs/bridge.md states the
// guarantees per pattern, the failure behaviour and the security of each mode; in short:
//  * topics: each message carries (origin, channel incarnation, sequence); the import counts
//    every gap exactly (TopicPublisher::count_upstream_lost: `shmring stat` shows it as lost on
//    the imported topic) and drops what it already delivered. Lossy topics never hold back the
//    local publisher; lossless ones hold it back end to end while both bridges and the link are
//    up (no loss then);
//  * queues: an item stays held (a view) on the exporting host until the import acknowledges
//    that its local queue took it; at-least-once across a crash of either bridge, with at most
//    `queue_window` redeliveries per crash, reported;
//  * frames: newest first; a slow link skips older frames, never holds the local publisher,
//    never shows a torn frame; optional rate limit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shmring/bridge/carrier.h"
#include "shmring/transport/channel.h"

namespace shmring::bridge {

// Queue items in flight per channel at most: each is held by one consumer endpoint (a peer slot
// of the queue, whose default max_peers is 64).
inline constexpr std::uint32_t kMaxQueueWindow = 256;
// Topics: bytes in flight per channel per import (its credit), unless set: the most the export
// queues toward one import and the most an import holds for one channel. Never less than one
// message of the channel's largest size.
inline constexpr std::uint64_t kDefaultTopicWindow = std::uint64_t{8} << 20;
inline constexpr std::uint64_t kMaxTopicWindow = std::uint64_t{1} << 30;

// Exports the local channels `channels` (each sent under its own name) at `bind`.
struct ExportSpec {
  std::string bind;  // "tcp://127.0.0.1:7001": loopback unless told otherwise
  // Names, or glob patterns (fnmatch: '*', '?', '[...]'): a local channel matching a pattern is
  // exported when an import asks for it by name (at most 1024 such channels at once).
  std::vector<std::string> channels;
  CarrierOptions carrier;
  double max_rate = 0;              // frames: at most this many frames per second per channel (0: no limit)
  std::uint32_t queue_window = 16;  // queues: items in flight per channel (each held until acknowledged)
  std::uint64_t topic_window = kDefaultTopicWindow;  // topics: most bytes in flight to one import
  // Lossless topics: an import that has held the channel back (no credit, or a full link) for
  // this long is evicted from it (told, counted, and let back after a pause that doubles with
  // each eviction); the others go on. 0: never (it then holds the publisher back as long as it
  // lives). Queues: an item an import has not acknowledged within ack_timeout goes back to the
  // queue, to be consumed elsewhere (it counts as redelivered), and that import is evicted the
  // same way. 0: never.
  std::chrono::milliseconds evict_after{30000};
  std::chrono::milliseconds ack_timeout{30000};
};

// A channel as the import side names it: `remote` on the exporting host, `local` here
// (the same unless the spec said "remote=local").
struct ChannelRoute {
  std::string remote;
  std::string local;
};
// Parses "name" or "remote=local" (both valid channel names). kInvalidArgument otherwise.
absl::StatusOr<ChannelRoute> parse_route(std::string_view spec);

// Imports `channels` from the export at `connect`.
struct ImportSpec {
  std::string connect;  // "tcp://10.0.0.1:7001"
  std::vector<ChannelRoute> channels;
  CarrierOptions carrier;
  std::uint32_t queue_window = 16;  // queues: items this side accepts in flight per channel
  std::uint64_t topic_window = kDefaultTopicWindow;  // topics: bytes this side accepts in flight per channel
};

struct BridgeConfig {
  std::vector<ExportSpec> exports;
  std::vector<ImportSpec> imports;
};

// What Bridge::create checks before it binds or connects anything: names, patterns, windows,
// bounds, addresses' form, keys. kInvalidArgument naming the first problem.
absl::Status check_config(const BridgeConfig& config);

// The configuration file (`shmring bridge --config FILE`, docs/bridge.md): sections [export] and
// [import], each any number of times, with `key = value` lines:
//   [export]  bind, channels (space separated), max_rate, queue_window, curve_secret_key,
//             curve_authorized (public keys, space separated), high_water_mark
//   [import]  connect, channels ("name" or "remote=local"), queue_window, curve_server_key,
//             curve_secret_key, high_water_mark
// '#' starts a comment. Keys are Z85 text or a path to a file holding it. kInvalidArgument with
// the line number for anything else.
absl::StatusOr<BridgeConfig> parse_bridge_config(std::string_view text);
absl::StatusOr<BridgeConfig> load_bridge_config(const std::string& path);
// Which key an option wants: this side's secret key, or a peer's public key.
enum class KeyKind { kSecret, kPublic };
// A key option's value: the key in the file it names (the first word that is not on a '#'
// line), or the 40 characters of Z85 text themselves. A value naming no file is taken as key
// text only if it looks like one: 40 Z85 characters, not starting with '/' or '.', not ending in
// ".key" or ".pub"; anything else is a missing key file (kNotFound). kInvalidArgument for a file
// that holds no key, or the other kind of key: a ".pub" file, or one `shmring bridge keygen`
// marked public, given as a secret key (and a ".key" or secret-marked one as a public key);
// kPermissionDenied for a secret key file that its group or others may read (as ssh refuses).
absl::StatusOr<std::string> read_key(std::string_view value_or_path, KeyKind kind);
// Writes a key pair as PREFIX.key (the secret, mode 0600) and PREFIX.pub (0644), each created
// anew: an existing file or a symbolic link at either name is never written through
// (kAlreadyExists; nothing is left behind).
absl::Status write_key_files(const std::string& prefix, const CurveKeys& keys);
// The first line `shmring bridge keygen` writes into each key file (read_key knows them).
inline constexpr std::string_view kSecretKeyMarker = "# shmring bridge CURVE secret key: keep it on this host";
inline constexpr std::string_view kPublicKeyMarker = "# shmring bridge CURVE public key";

// What one bridged channel has done so far.
struct ChannelStatus {
  std::string direction;  // "export" or "import"
  std::string channel;    // local name
  std::string remote;     // name on the other host
  std::string endpoint;   // the carrier's address
  ChannelKind kind = ChannelKind::kTopic;
  bool open = false;      // the local endpoint is open (export: the channel exists)
  bool lossless = false;
  std::uint32_t peers = 0;          // export: imports receiving it; import: 1 once described
  std::uint64_t messages = 0;       // export: sent (to at least one peer); import: delivered locally
  std::uint64_t bytes = 0;          // payload bytes of those
  std::uint64_t lost = 0;           // import: gaps in the upstream sequence (exact)
  std::uint64_t duplicates = 0;     // import: dropped, already delivered (after a restart upstream)
  std::uint64_t dropped = 0;        // export: per-peer sends refused by a full link (lossy, frames)
  std::uint64_t redelivered = 0;    // queues: export: items sent again; import: arrived marked so
  std::uint64_t rejected = 0;       // import: messages refused (too large, wrong kind, bad header)
  std::uint64_t resets = 0;         // import: the upstream channel changed incarnation (new baseline)
  std::uint64_t held_back_ns = 0;   // time the local side waited (lossless back-pressure)
  std::uint64_t evictions = 0;      // export: imports evicted from the channel (evict_after,
                                    // ack_timeout); import: times the export evicted this one
  // The link. Import: "connecting" (no connection yet, or an address that cannot be reached),
  // "up" (the export was heard from within peer_timeout), "down" (the connection was lost, or
  // the export fell silent), "refused" (the handshake failed: CURVE keys). Export: "up" while an
  // import asks for the channel, else "waiting".
  std::string link;
  std::uint64_t link_changes = 0;   // import: times its link state changed
  std::uint64_t link_ms = 0;        // import: how long the link has been in its state
};

struct BridgeStatus {
  std::vector<ChannelStatus> channels;
  std::uint64_t malformed = 0;  // network messages dropped as malformed (bad header, size, parts)
  std::uint64_t unknown_channel = 0;  // well-formed, for a channel not bridged here
  std::uint64_t refused = 0;    // connections refused at the handshake (CURVE: key not authorised)
  std::uint32_t peers = 0;      // import sessions the exports hear from
};

class Bridge {
 public:
  // Makes the carriers (binds, connects) and opens what can be opened now; channels that do not
  // exist yet are opened when they appear. kInvalidArgument for a bad spec (names, endpoints,
  // keys), kUnavailable when an address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Bridge>> create(const BridgeConfig& config);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Runs until stop(); calls on_status (if given) every `status_interval`. Returns OK. run() and
  // run_once() are called by one thread at a time.
  absl::Status run(const std::function<void(const BridgeStatus&)>& on_status = {},
                   std::chrono::milliseconds status_interval = std::chrono::milliseconds(1000));
  // One round: moves what is ready, waiting up to `max_wait` for something to do.
  void run_once(std::chrono::milliseconds max_wait);
  // Makes run() return soon. Async-signal-safe (a SIGINT/SIGTERM handler may call it).
  void stop() noexcept;
  // What every bridged channel has done so far. Thread-safe: may be called from any thread
  // while another runs the bridge (it waits for the current round's step, never for a poll).
  BridgeStatus status() const;

 private:
  struct Impl;
  explicit Bridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether bridges in this process write their event lines (peers, channels, errors) to stderr.
// On by default. Thread-safe.
void set_logging(bool on) noexcept;

// One line of JSON for a status (`shmring bridge --json`).
std::string status_json(const BridgeStatus& status);

}  // namespace shmring::bridge
