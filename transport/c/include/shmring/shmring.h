/*
 * shmring.h: the C API of shmring (C11). Message passing between processes through shared memory:
 * topics (publishers and many subscribers), queues (competing consumers) and frames (large
 * buffers written and read in place), with copying and zero-copy calls, pollable descriptors,
 * counters readable from outside, and channel listing and removal. It wraps the C++ API
 * (shmring/transport/topic.h, queue.h, frame.h) call for call; docs/transport.md has the semantics, docs/c-api.md the
 * conventions below and what a binding in another language calls.
 *
 * Conventions:
 *  - Handles are opaque pointers made by *_open and freed by *_destroy (NULL is fine there).
 *    shmring_endpoint_close() closes an endpoint without freeing its handle: every later call on
 *    it returns SHMRING_CLOSED. Using a handle after *_destroy is undefined behaviour, as with
 *    free(). A handle of the wrong kind, or one that was never made by this library, is refused
 *    with SHMRING_INVALID_ARGUMENT as far as the library can tell (it checks a tag in the handle).
 *  - Every call that can fail returns a shmring_status_t. SHMRING_OK is 0. The data-path results
 *    (SHMRING_WOULD_BLOCK ... SHMRING_OVERWRITTEN) are the whole answer: shmring_status_string()
 *    names them. Every other error also leaves a message for this thread, naming the call, the
 *    channel and the reason: shmring_last_error(). A successful call leaves it alone.
 *  - No C++ exception crosses this interface; allocation failures are SHMRING_OUT_OF_MEMORY.
 *  - Threads: an endpoint is used by one thread at a time (moving it to another thread is fine);
 *    any number of endpoints may use a channel from any threads and processes. Loans and views
 *    belong to their endpoint: one loan (publishers, producers) or one view (subscribers,
 *    consumers) at a time per endpoint, held inside the endpoint's handle.
 *  - Timeouts are nanoseconds on the monotonic clock; 0 (or less) means "do not wait" (the try_
 *    behaviour of the C++ API); SHMRING_FOREVER waits as long as it takes.
 *  - Sizes are size_t, counters uint64_t, names NUL-terminated strings of 1 to 128 bytes.
 *  - Options structs start with struct_size: fill them with the *_options_init() call, which sets
 *    the defaults and struct_size, then change what you need. Fields added by later versions go at
 *    the end, so a program compiled against this header keeps working with a newer library (it
 *    reads only the fields struct_size covers). A NULL options pointer means all defaults.
 */
#ifndef SHMRING_SHMRING_H_
#define SHMRING_SHMRING_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this C interface: raised when a call or struct is added. */
#define SHMRING_C_API_VERSION 3

/* Wait as long as it takes (a timeout argument). */
#define SHMRING_FOREVER INT64_MAX

/* The library's version, "MAJOR.MINOR.PATCH". Never NULL. */
const char* shmring_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Status codes and messages                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum shmring_status {
  SHMRING_OK = 0,
  /* Data-path results (the C++ ChannelResult). */
  SHMRING_WOULD_BLOCK = 1, /* full (sending) or empty (receiving) right now; or a second loan/view */
  SHMRING_TIMED_OUT = 2,   /* a call with a timeout reached it */
  SHMRING_TOO_LARGE = 3,   /* the message exceeds max_message, or the caller's buffer is short */
  SHMRING_CORRUPT = 4,     /* the segment holds something no honest peer writes */
  SHMRING_EVICTED = 5,     /* lossless topic subscriber: evicted; open a new one */
  SHMRING_CLOSED = 6,      /* the endpoint is closed (or the loan/view was settled by a close) */
  SHMRING_OVERWRITTEN = 7, /* lossy topic view: overwritten while viewed; discard what was read */
  SHMRING_PEER_GONE = 8,   /* services (version 3): the request ended without a final response (its
                              server died and it was at-most-once, or the server dropped it); or
                              the client is gone */
  SHMRING_CANCELLED = 9,   /* services: the client cancelled the request; nothing was written */
  /* Errors of open, inspection and argument checks (the C++ absl::StatusCode), with a message. */
  SHMRING_INVALID_ARGUMENT = 20, /* a NULL or wrong handle, a bad name, size or option */
  SHMRING_NOT_FOUND = 21,        /* no such channel (create = false, stats, removal) */
  SHMRING_ALREADY_EXISTS = 22,
  SHMRING_PERMISSION_DENIED = 23,
  SHMRING_FAILED_PRECONDITION = 24, /* the channel exists with another kind, mode or limits; a live
                                       publisher already holds a topic or frame channel */
  SHMRING_RESOURCE_EXHAUSTED = 25,  /* every peer slot taken; /dev/shm full */
  SHMRING_DEADLINE_EXCEEDED = 26,   /* the channel's creator did not finish within open_timeout */
  SHMRING_ABORTED = 27,             /* the segment lock could not be had within open_timeout */
  SHMRING_DATA_LOSS = 28,           /* the channel's control block is corrupt */
  SHMRING_UNAVAILABLE = 29,
  SHMRING_INTERNAL = 30,
  SHMRING_UNKNOWN = 31,             /* any other error of the C++ library */
  SHMRING_OUT_OF_MEMORY = 40        /* the C layer could not allocate */
} shmring_status_t;

/* A short description of a status ("would block", "timed out", "invalid argument"). Never NULL;
 * "unknown status" for a value that is not a shmring_status_t. */
const char* shmring_status_string(shmring_status_t status);

/* The message of the last call on this thread that failed with an error other than a data-path
 * result, e.g. "shmring_topic_subscriber_open: channel 'prices': ...". Empty string if none. The
 * pointer is valid until the next call into the library on this thread. Never NULL. */
const char* shmring_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Waiting and options                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* How a call with a timeout waits once it cannot proceed (the C++ WaitStrategy). */
typedef enum shmring_wait_strategy {
  SHMRING_WAIT_BUSY_SPIN = 0, /* spin until the deadline: lowest latency, burns a core */
  SHMRING_WAIT_YIELD = 1,     /* sched_yield between attempts */
  SHMRING_WAIT_PARK = 2,      /* sleep on the channel's futex at once */
  SHMRING_WAIT_HYBRID = 3     /* spin spin_iterations times, then park (default) */
} shmring_wait_strategy_t;

/* Topic options (the C++ TopicOptions). The creator's settings are checked against an existing
 * channel's: a non-zero value that differs is SHMRING_FAILED_PRECONDITION. */
typedef struct shmring_topic_options {
  size_t struct_size;         /* sizeof(shmring_topic_options_t), set by shmring_topic_options_init */
  uint64_t capacity;          /* ring bytes, a power of two (0: creator default 1 MiB) */
  uint64_t max_message;       /* bytes (0: creator default min(64 KiB, capacity / 2 - 16)) */
  uint32_t max_peers;         /* publisher + subscribers (0: creator default 64) */
  uint32_t permissions;       /* mode bits of a channel this call creates, and the loosest mode of
                                 one it opens (default 0600) */
  int64_t group;              /* group of a channel this call creates (-1: the creator's) */
  bool create;                /* false: only open an existing channel (default true) */
  bool lossless;              /* creator: the default delivery of its subscribers; subscriber:
                                 lossless delivery (default false: the creator's default) */
  bool start_at_latest;       /* subscriber: start at the newest message, not the next one */
  bool read_only;             /* lossy subscriber: map read-only, unregistered, polls (no wait_fd) */
  int32_t wait_strategy;      /* a shmring_wait_strategy_t (default SHMRING_WAIT_HYBRID) */
  uint32_t spin_iterations;   /* SHMRING_WAIT_HYBRID: attempts before parking (default 2000) */
  uint32_t open_timeout_ms;   /* waiting for the segment lock and a creator (default 2000) */
  uint32_t dead_check_interval_ms; /* lossless publisher held back: looks for dead subscribers (5) */
  uint32_t evict_after_ms;    /* lossless publisher: evicts a live subscriber holding it back this
                                 long (0: never) */
  uint64_t evict_lag;         /* lossless publisher: evicts a subscriber lagging this many bytes
                                 (0: never) */
  const uint32_t* trusted_owners; /* uids whose channels this call may open besides the caller's own
                                     (anyone else's is SHMRING_PERMISSION_DENIED); may be NULL when
                                     trusted_owner_count is 0; copied by the call */
  size_t trusted_owner_count;
  /* Since SHMRING_C_API_VERSION 2 (a shorter struct_size leaves them at their defaults): */
  uint64_t history;           /* creator: messages the ring keeps for late joiners (0: none) */
  uint64_t start_count;       /* subscriber, start SHMRING_START_HISTORY: the last n messages */
  uint32_t max_publishers;    /* creator: publishers open at once (0: default 1) */
  int32_t delivery;           /* subscriber: a shmring_topic_delivery_t value, by default
                                 SHMRING_DELIVERY_DEFAULT */
  int32_t start;              /* subscriber: a shmring_topic_start_t value, by default
                                 SHMRING_START_LIVE; start_at_latest is SHMRING_START_LATEST:
                                 give one or the other */
} shmring_topic_options_t;

/* A topic subscriber's delivery (the C++ TopicDelivery): its own choice, whatever the creator's
 * default. DEFAULT: the creator's lossless flag, unless this subscriber's `lossless` asks for it. */
typedef enum shmring_topic_delivery {
  SHMRING_DELIVERY_DEFAULT = 0,
  SHMRING_DELIVERY_LOSSLESS = 1, /* holds the publishers back; loses nothing */
  SHMRING_DELIVERY_LOSSY = 2     /* never holds them back; counts what it lost */
} shmring_topic_delivery_t;

/* Where a topic subscriber starts (the C++ TopicStart). */
typedef enum shmring_topic_start {
  SHMRING_START_LIVE = 0,    /* messages published after it opened */
  SHMRING_START_LATEST = 1,  /* the newest message, then live */
  SHMRING_START_HISTORY = 2, /* the last start_count messages, then live */
  SHMRING_START_OLDEST = 3   /* everything the ring still holds, then live */
} shmring_topic_start_t;

/* Queue options (the C++ QueueOptions). */
typedef struct shmring_queue_options {
  size_t struct_size;       /* set by shmring_queue_options_init */
  uint64_t capacity;        /* slots, a power of two (0: creator default 1024) */
  uint64_t max_message;     /* bytes per item (0: creator default 256) */
  uint32_t max_peers;       /* endpoints at once (0: creator default 64) */
  uint32_t permissions;     /* default 0600; also the loosest mode of a channel it opens */
  int64_t group;            /* -1: the creator's */
  bool create;              /* default true */
  int32_t wait_strategy;    /* default SHMRING_WAIT_HYBRID */
  uint32_t spin_iterations; /* default 2000 */
  uint32_t open_timeout_ms; /* default 2000 */
  const uint32_t* trusted_owners; /* as in shmring_topic_options_t */
  size_t trusted_owner_count;
} shmring_queue_options_t;

/* Frame channel options (the C++ FrameOptions). */
typedef struct shmring_frame_options {
  size_t struct_size;       /* set by shmring_frame_options_init */
  uint64_t capacity;        /* frame buffers, 3 to 64 (0: creator default 4) */
  uint64_t max_message;     /* bytes per frame (0: creator default 4 MiB) */
  uint32_t max_peers;       /* 0: creator default 16 */
  uint32_t permissions;     /* default 0600; also the loosest mode of a channel it opens */
  int64_t group;            /* -1: the creator's */
  bool create;              /* default true */
  int32_t wait_strategy;    /* default SHMRING_WAIT_HYBRID */
  uint32_t spin_iterations; /* default 2000 */
  uint32_t open_timeout_ms; /* default 2000 */
  const uint32_t* trusted_owners; /* as in shmring_topic_options_t */
  size_t trusted_owner_count;
} shmring_frame_options_t;

/* Fill `options` with the defaults and set struct_size. NULL is ignored. */
void shmring_topic_options_init(shmring_topic_options_t* options);
void shmring_queue_options_init(shmring_queue_options_t* options);
void shmring_frame_options_init(shmring_frame_options_t* options);

/* ------------------------------------------------------------------------------------------ */
/* Endpoints: what every kind shares                                                            */
/* ------------------------------------------------------------------------------------------ */

typedef struct shmring_endpoint shmring_endpoint_t; /* any endpoint, for the calls below */
typedef struct shmring_topic_publisher shmring_topic_publisher_t;
typedef struct shmring_topic_subscriber shmring_topic_subscriber_t;
typedef struct shmring_queue_producer shmring_queue_producer_t;
typedef struct shmring_queue_consumer shmring_queue_consumer_t;
typedef struct shmring_frame_publisher shmring_frame_publisher_t;
typedef struct shmring_frame_subscriber shmring_frame_subscriber_t;

/* An endpoint's role (shmring_peer_stats_t::role). */
typedef enum shmring_role {
  SHMRING_ROLE_NONE = 0,
  SHMRING_ROLE_PRODUCER = 1,
  SHMRING_ROLE_CONSUMER = 2,
  SHMRING_ROLE_PUBLISHER = 3,
  SHMRING_ROLE_SUBSCRIBER = 4
} shmring_role_t;

/* The counters of one endpoint (the C++ PeerStats). */
typedef struct shmring_peer_stats {
  uint32_t index;      /* its peer slot */
  int32_t role;        /* a shmring_role_t */
  int32_t state;       /* 0 free, 1 active, 2 found dead with something unsettled */
  int32_t pid;
  bool alive;          /* its process holds its liveness lock (kernel-held) */
  uint64_t sent;
  uint64_t received;
  uint64_t lost;
  uint64_t blocked_ns;
  uint64_t lag;        /* topic subscribers: bytes behind the publisher */
} shmring_peer_stats_t;

/* Wait events (shmring_endpoint_take_wait_events): a bit set. */
#define SHMRING_EVENT_DATA 0x01u      /* a receiver may have messages (or a newer frame) */
#define SHMRING_EVENT_ROOM 0x02u      /* a sender that was held back may have room */
#define SHMRING_EVENT_PEER_GONE 0x04u /* an endpoint this one waits on (or for) closed or died */
#define SHMRING_EVENT_EVICTED 0x08u   /* this lossless subscriber was evicted */
#define SHMRING_EVENT_REMOVED 0x10u   /* the channel's name was removed */

/* The generic view of a typed handle (the same object; NULL for NULL). Never fails. */
shmring_endpoint_t* shmring_topic_publisher_endpoint(shmring_topic_publisher_t* publisher);
shmring_endpoint_t* shmring_topic_subscriber_endpoint(shmring_topic_subscriber_t* subscriber);
shmring_endpoint_t* shmring_queue_producer_endpoint(shmring_queue_producer_t* producer);
shmring_endpoint_t* shmring_queue_consumer_endpoint(shmring_queue_consumer_t* consumer);
shmring_endpoint_t* shmring_frame_publisher_endpoint(shmring_frame_publisher_t* publisher);
shmring_endpoint_t* shmring_frame_subscriber_endpoint(shmring_frame_subscriber_t* subscriber);

/* Closes the endpoint: settles its loan or view (a loan is given up, a view released or handed
 * on), unregisters and detaches; waits up to 2 s for the segment lock. The handle stays valid
 * (every call then returns SHMRING_CLOSED) until it is destroyed. Idempotent. SHMRING_OK, or
 * SHMRING_INVALID_ARGUMENT for a NULL or foreign handle. */
shmring_status_t shmring_endpoint_close(shmring_endpoint_t* endpoint);

/* Whether the endpoint is open (false for NULL, a foreign handle or a closed endpoint). */
bool shmring_endpoint_is_open(const shmring_endpoint_t* endpoint);

/* A descriptor that becomes readable when the endpoint may have work (docs/events.md), for poll,
 * select, epoll and event loops. Protocol: wait until it is readable; call the endpoint's calls
 * with timeout 0 until one returns SHMRING_WOULD_BLOCK (that re-arms it); repeat. Made on the
 * first call, closed with the endpoint; do not close it yourself. SHMRING_OK and *fd; SHMRING_CLOSED;
 * SHMRING_UNAVAILABLE for a read_only topic subscriber (nobody can wake it) or when the system
 * refuses (the message says why). */
shmring_status_t shmring_endpoint_wait_fd(shmring_endpoint_t* endpoint, int* fd);

/* Why the descriptor is (or was) readable: SHMRING_EVENT_* bits; 0 without a descriptor, for a
 * closed endpoint or a bad handle. Never waits. */
uint32_t shmring_endpoint_take_wait_events(shmring_endpoint_t* endpoint);

/* This endpoint's own counters. SHMRING_OK; SHMRING_CLOSED; SHMRING_INVALID_ARGUMENT. A read_only
 * topic subscriber has no peer slot: its stats are all zero. */
shmring_status_t shmring_endpoint_stats(const shmring_endpoint_t* endpoint, shmring_peer_stats_t* stats);

/* Names this incarnation of the channel: the same in every process, different once the channel is
 * removed and made again. 0 when closed or for a bad handle. */
uint64_t shmring_endpoint_channel_incarnation(const shmring_endpoint_t* endpoint);

/* The largest message the endpoint's channel takes, in bytes (services: the largest request); 0 when
 * closed or for a bad handle. */
uint64_t shmring_endpoint_max_message(const shmring_endpoint_t* endpoint);

/* ------------------------------------------------------------------------------------------ */
/* Views (zero-copy receive)                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* A message lent in place to a subscriber or consumer until it is released (or the endpoint is
 * closed or destroyed). `data` is read-only memory inside the channel. */
typedef struct shmring_view {
  const void* data;
  size_t size;
  uint64_t sequence; /* topic: the message's sequence number; queue: the item's ticket (kept on
                        redelivery); frames: the frame number */
  uint32_t flags;    /* SHMRING_VIEW_REDELIVERED (queue: a consumer that died held it first) */
} shmring_view_t;

#define SHMRING_VIEW_REDELIVERED 0x01u /* queue: a consumer that died held it first; service
                                          response: written by a server that took the request over */
#define SHMRING_VIEW_FINAL 0x02u       /* service response: the last of its request */

/* ------------------------------------------------------------------------------------------ */
/* Topics: up to max_publishers publishers (default 1) in one total order, any number of
 * subscribers; each sees every message (or is told what it lost). Each subscriber's delivery is
 * lossy (never holds the publishers back) or lossless (holds them back), by default the creator's
 * choice; it starts live, at the latest message, at the last n, or at the oldest the ring holds. */
/* ------------------------------------------------------------------------------------------ */

/* Opens (or creates) topic `name` as one of its publishers. SHMRING_OK and *publisher; otherwise
 * SHMRING_INVALID_ARGUMENT (bad name or options), SHMRING_FAILED_PRECONDITION (max_publishers
 * live publishers exist; another kind, mode or limits), SHMRING_NOT_FOUND (create = false), SHMRING_PERMISSION_DENIED
 * (also: the channel belongs to a user not trusted, or is looser than `permissions`),
 * SHMRING_RESOURCE_EXHAUSTED, SHMRING_DEADLINE_EXCEEDED, SHMRING_ABORTED, SHMRING_DATA_LOSS,
 * SHMRING_OUT_OF_MEMORY, with a message. May wait (open_timeout_ms). */
shmring_status_t shmring_topic_publisher_open(const char* name, const shmring_topic_options_t* options,
                                              shmring_topic_publisher_t** publisher);
/* Closes (if open) and frees the handle. NULL is fine. */
void shmring_topic_publisher_destroy(shmring_topic_publisher_t* publisher);

/* Copies `size` bytes in as the next message and wakes parked subscribers. Lossy: never waits.
 * Lossless: waits up to timeout_ns for room (evicting as the options say). SHMRING_OK,
 * SHMRING_WOULD_BLOCK / SHMRING_TIMED_OUT (lossless), SHMRING_TOO_LARGE, SHMRING_CORRUPT,
 * SHMRING_CLOSED; SHMRING_INVALID_ARGUMENT for a bad handle or data == NULL with size > 0. */
shmring_status_t shmring_topic_publisher_send(shmring_topic_publisher_t* publisher, const void* data,
                                              size_t size, int64_t timeout_ns);

/* Zero-copy: lends room for a message of up to max_bytes (0: max_message) in the ring:
 * *buffer, *capacity. Fill it, then publish (or abandon). One loan at a time (a second:
 * SHMRING_WOULD_BLOCK); no copying send while it is out. SHMRING_OK, SHMRING_TOO_LARGE,
 * SHMRING_CORRUPT, SHMRING_CLOSED; lossless also SHMRING_WOULD_BLOCK / SHMRING_TIMED_OUT. */
shmring_status_t shmring_topic_publisher_loan(shmring_topic_publisher_t* publisher, size_t max_bytes,
                                              int64_t timeout_ns, void** buffer, size_t* capacity);
/* Publishes the loan's first `size` bytes (<= its capacity) as the next message. SHMRING_OK;
 * SHMRING_TOO_LARGE (the loan is kept); SHMRING_CLOSED (no loan out, or the endpoint closed). */
shmring_status_t shmring_topic_publisher_publish(shmring_topic_publisher_t* publisher, size_t size);
/* Gives the loan up: subscribers never see it. SHMRING_OK also when no loan is out. */
shmring_status_t shmring_topic_publisher_abandon(shmring_topic_publisher_t* publisher);

/* The sequence number the next message will carry; 0 when closed. */
uint64_t shmring_topic_publisher_next_sequence(const shmring_topic_publisher_t* publisher);
/* Live subscribers this lossless publisher evicted. */
uint64_t shmring_topic_publisher_evictions(const shmring_topic_publisher_t* publisher);
/* Whether the topic is lossless by default (the creator's lossless: subscribers that do not choose). */
bool shmring_topic_publisher_lossless(const shmring_topic_publisher_t* publisher);
/* Since version 2. This publisher's id as subscribers see it (shmring_topic_subscriber_last_publisher):
 * stable while it is open; 0 for NULL or closed. */
uint32_t shmring_topic_publisher_id(const shmring_topic_publisher_t* publisher);
/* Messages this publisher sent (the publisher sequence its next message carries). */
uint64_t shmring_topic_publisher_published(const shmring_topic_publisher_t* publisher);
/* The creator's max_publishers and history. */
uint32_t shmring_topic_publisher_max_publishers(const shmring_topic_publisher_t* publisher);
uint64_t shmring_topic_publisher_history(const shmring_topic_publisher_t* publisher);

/* Opens (or creates) topic `name` as a subscriber. Errors as the publisher's open; also
 * SHMRING_FAILED_PRECONDITION for read_only on a lossless topic, SHMRING_RESOURCE_EXHAUSTED when
 * every peer or lossless reader slot is taken. */
shmring_status_t shmring_topic_subscriber_open(const char* name, const shmring_topic_options_t* options,
                                               shmring_topic_subscriber_t** subscriber);
void shmring_topic_subscriber_destroy(shmring_topic_subscriber_t* subscriber);

/* Copies the next message into buffer[0 .. capacity) and sets *size, waiting up to timeout_ns.
 * SHMRING_OK; SHMRING_WOULD_BLOCK (timeout 0) / SHMRING_TIMED_OUT; SHMRING_TOO_LARGE: the next
 * message is longer than `capacity`; it is not consumed and *size says how long it is (a buffer of
 * max_message bytes always fits); SHMRING_EVICTED; SHMRING_CORRUPT; SHMRING_CLOSED;
 * SHMRING_WOULD_BLOCK while a view is out. A lapped lossy subscriber skips ahead and counts what
 * it skipped (shmring_topic_subscriber_lost). */
shmring_status_t shmring_topic_subscriber_receive(shmring_topic_subscriber_t* subscriber, void* buffer,
                                                  size_t capacity, size_t* size, int64_t timeout_ns);
/* Zero-copy: the next message in place, until shmring_topic_subscriber_release. One view at a
 * time (a second: SHMRING_WOULD_BLOCK). Results as receive (no SHMRING_TOO_LARGE). A lossy view
 * can be overwritten while it is read: check release's answer before trusting what was read. */
shmring_status_t shmring_topic_subscriber_view(shmring_topic_subscriber_t* subscriber, int64_t timeout_ns,
                                               shmring_view_t* view);
/* Ends the view. SHMRING_OK: it was intact while viewed. SHMRING_OVERWRITTEN (lossy): overwritten
 * meanwhile; discard what was read. SHMRING_EVICTED (lossless). SHMRING_OK also when no view is
 * out; SHMRING_CLOSED if the subscriber was closed meanwhile. */
shmring_status_t shmring_topic_subscriber_release(shmring_topic_subscriber_t* subscriber);

/* Messages skipped after being lapped (exact). */
uint64_t shmring_topic_subscriber_lost(const shmring_topic_subscriber_t* subscriber);
/* Messages received. */
uint64_t shmring_topic_subscriber_received(const shmring_topic_subscriber_t* subscriber);
/* The sequence number of the message most recently received or viewed (0 before the first). */
uint64_t shmring_topic_subscriber_last_sequence(const shmring_topic_subscriber_t* subscriber);
/* Whether this subscriber's delivery is lossless (it holds the publishers back). */
bool shmring_topic_subscriber_lossless(const shmring_topic_subscriber_t* subscriber);
/* Since version 2. This subscriber's delivery (SHMRING_DELIVERY_LOSSLESS or _LOSSY; _DEFAULT for
 * NULL or closed). */
shmring_topic_delivery_t shmring_topic_subscriber_delivery(const shmring_topic_subscriber_t* subscriber);
/* The publisher id and that publisher's own number of the message most recently received or
 * viewed (0 before the first): with several publishers, who sent it. */
uint32_t shmring_topic_subscriber_last_publisher(const shmring_topic_subscriber_t* subscriber);
uint64_t shmring_topic_subscriber_last_publisher_sequence(const shmring_topic_subscriber_t* subscriber);
/* Of the messages a LATEST or HISTORY start asked for, how many were no longer in the ring. */
uint64_t shmring_topic_subscriber_history_missed(const shmring_topic_subscriber_t* subscriber);

/* ------------------------------------------------------------------------------------------ */
/* Queues: several producers, several competing consumers, each item to exactly one consumer.   */
/* ------------------------------------------------------------------------------------------ */

/* Opens (or creates) queue `name` as a producer. Errors as shmring_topic_publisher_open (no
 * publisher check). */
shmring_status_t shmring_queue_producer_open(const char* name, const shmring_queue_options_t* options,
                                             shmring_queue_producer_t** producer);
void shmring_queue_producer_destroy(shmring_queue_producer_t* producer);
/* Copies `size` bytes in, waiting up to timeout_ns for room. SHMRING_OK, SHMRING_WOULD_BLOCK
 * (timeout 0: full) / SHMRING_TIMED_OUT, SHMRING_TOO_LARGE, SHMRING_CORRUPT, SHMRING_CLOSED. */
shmring_status_t shmring_queue_producer_send(shmring_queue_producer_t* producer, const void* data, size_t size,
                                             int64_t timeout_ns);
/* Zero-copy: lends the next slot (*buffer, *capacity = max_message), waiting up to timeout_ns.
 * SHMRING_OK, SHMRING_WOULD_BLOCK (full, or a loan already out), SHMRING_TIMED_OUT, SHMRING_CORRUPT,
 * SHMRING_CLOSED. Consumers behind its ticket wait while it is out: hold it briefly. */
shmring_status_t shmring_queue_producer_loan(shmring_queue_producer_t* producer, int64_t timeout_ns,
                                             void** buffer, size_t* capacity);
/* Publishes `size` bytes of the loan. SHMRING_OK, SHMRING_TOO_LARGE (loan kept), SHMRING_CLOSED
 * (no loan out), SHMRING_CORRUPT (a recovery skipped the slot: not delivered). */
shmring_status_t shmring_queue_producer_publish(shmring_queue_producer_t* producer, size_t size);
/* Gives the loan up (consumers pass the slot). SHMRING_OK also when no loan is out. */
shmring_status_t shmring_queue_producer_abandon(shmring_queue_producer_t* producer);
/* Slots, and items in the queue right now (racy). 0 when closed. */
uint64_t shmring_queue_producer_capacity(const shmring_queue_producer_t* producer);
uint64_t shmring_queue_producer_size_approx(const shmring_queue_producer_t* producer);

/* Opens (or creates) queue `name` as a consumer. */
shmring_status_t shmring_queue_consumer_open(const char* name, const shmring_queue_options_t* options,
                                             shmring_queue_consumer_t** consumer);
/* Closes and frees. A view still out is handed to another consumer (redelivered). */
void shmring_queue_consumer_destroy(shmring_queue_consumer_t* consumer);
/* Copies the next item into buffer (capacity >= max_message, else SHMRING_TOO_LARGE), waiting up
 * to timeout_ns. SHMRING_OK, SHMRING_WOULD_BLOCK / SHMRING_TIMED_OUT, SHMRING_TOO_LARGE,
 * SHMRING_CORRUPT, SHMRING_CLOSED. */
shmring_status_t shmring_queue_consumer_receive(shmring_queue_consumer_t* consumer, void* buffer,
                                                size_t capacity, size_t* size, int64_t timeout_ns);
/* Zero-copy: the next item in place until release (view->flags says if it was redelivered). */
shmring_status_t shmring_queue_consumer_view(shmring_queue_consumer_t* consumer, int64_t timeout_ns,
                                             shmring_view_t* view);
/* Gives the slot back. SHMRING_OK (also when no view is out); SHMRING_CLOSED (the consumer was
 * closed meanwhile: the item went to another consumer); SHMRING_CORRUPT (a recovery gave the item
 * to another consumer meanwhile: what was read may be wrong). */
shmring_status_t shmring_queue_consumer_release(shmring_queue_consumer_t* consumer);
uint64_t shmring_queue_consumer_capacity(const shmring_queue_consumer_t* consumer);
uint64_t shmring_queue_consumer_size_approx(const shmring_queue_consumer_t* consumer);

/* ------------------------------------------------------------------------------------------ */
/* Frames: large buffers written in place by one publisher, read in place, newest first.        */
/* ------------------------------------------------------------------------------------------ */

shmring_status_t shmring_frame_publisher_open(const char* name, const shmring_frame_options_t* options,
                                              shmring_frame_publisher_t** publisher);
void shmring_frame_publisher_destroy(shmring_frame_publisher_t* publisher);
/* Copying: loan + copy + publish, waiting up to timeout_ns for a free buffer. SHMRING_OK,
 * SHMRING_TOO_LARGE, SHMRING_WOULD_BLOCK (also while a loan is out), SHMRING_TIMED_OUT, SHMRING_CLOSED. */
shmring_status_t shmring_frame_publisher_send(shmring_frame_publisher_t* publisher, const void* data,
                                              size_t size, int64_t timeout_ns);
/* Zero-copy: a free buffer of max_message bytes (neither the latest frame nor pinned by a view). */
shmring_status_t shmring_frame_publisher_loan(shmring_frame_publisher_t* publisher, int64_t timeout_ns,
                                              void** buffer, size_t* capacity);
/* Makes the loan's first `size` bytes the latest frame. SHMRING_OK, SHMRING_TOO_LARGE (loan kept),
 * SHMRING_CLOSED (no loan out). */
shmring_status_t shmring_frame_publisher_publish(shmring_frame_publisher_t* publisher, size_t size);
shmring_status_t shmring_frame_publisher_abandon(shmring_frame_publisher_t* publisher);
uint64_t shmring_frame_publisher_frames_published(const shmring_frame_publisher_t* publisher);

shmring_status_t shmring_frame_subscriber_open(const char* name, const shmring_frame_options_t* options,
                                               shmring_frame_subscriber_t** subscriber);
void shmring_frame_subscriber_destroy(shmring_frame_subscriber_t* subscriber);
/* Copies the newest frame newer than the last one taken (capacity >= max_message, else
 * SHMRING_TOO_LARGE). SHMRING_OK, SHMRING_WOULD_BLOCK / SHMRING_TIMED_OUT (no newer frame),
 * SHMRING_CORRUPT, SHMRING_CLOSED. */
shmring_status_t shmring_frame_subscriber_receive(shmring_frame_subscriber_t* subscriber, void* buffer,
                                                  size_t capacity, size_t* size, int64_t timeout_ns);
/* Zero-copy: the newest frame, pinned in place (never torn) until release. */
shmring_status_t shmring_frame_subscriber_view(shmring_frame_subscriber_t* subscriber, int64_t timeout_ns,
                                               shmring_view_t* view);
/* Unpins the frame. SHMRING_OK (also when no view is out); SHMRING_CLOSED. */
shmring_status_t shmring_frame_subscriber_release(shmring_frame_subscriber_t* subscriber);
/* Frames published that this subscriber skipped; frames it received. */
uint64_t shmring_frame_subscriber_lost(const shmring_frame_subscriber_t* subscriber);
uint64_t shmring_frame_subscriber_received(const shmring_frame_subscriber_t* subscriber);

/* ------------------------------------------------------------------------------------------ */
/* Channels on this machine: counters, listing, removal                                         */
/* ------------------------------------------------------------------------------------------ */

typedef enum shmring_kind {
  SHMRING_KIND_QUEUE = 1,
  SHMRING_KIND_TOPIC = 2,
  SHMRING_KIND_FRAMES = 3,
  SHMRING_KIND_SERVICE = 4 /* since version 3 (shmring_read_service_stats has its counters) */
} shmring_kind_t;

#define SHMRING_MAX_CHANNEL_NAME 128

/* A channel's counters (the C++ ChannelStats), read from outside without disturbing it. */
typedef struct shmring_channel_stats {
  size_t struct_size;  /* sizeof(shmring_channel_stats_t): set it before the call */
  char name[SHMRING_MAX_CHANNEL_NAME + 1];
  int32_t kind;        /* a shmring_kind_t */
  bool lossless;
  uint64_t capacity;
  uint64_t max_message;
  uint32_t max_peers;
  int32_t attachments; /* the kernel's count of live attachments (this reader's included) */
  uint64_t sent;
  uint64_t received;
  uint64_t lost;
  uint64_t blocked_ns;
  uint64_t peers_reclaimed;
  uint64_t claims_skipped;
  uint64_t items_redelivered;
  uint64_t evictions;
  uint64_t depth;            /* queue: items waiting (approximate) */
  uint32_t receivers_parked; /* parked on the wake words right now */
  uint32_t senders_parked;
  uint32_t receivers_armed;  /* with an armed wait_fd right now */
  uint32_t senders_armed;
  uint32_t peer_count;       /* occupied peer slots (the peers array holds the first ones) */
} shmring_channel_stats_t;

/* Reads channel `name`'s counters into *stats (stats->struct_size must be set) and up to
 * peers_capacity endpoints into peers (may be NULL when peers_capacity is 0). Never waits.
 * SHMRING_OK; SHMRING_NOT_FOUND (no such live channel); SHMRING_DATA_LOSS (no valid control block);
 * SHMRING_INVALID_ARGUMENT (bad name, NULL stats, struct_size too small); SHMRING_PERMISSION_DENIED. */
shmring_status_t shmring_read_stats(const char* name, shmring_channel_stats_t* stats,
                                    shmring_peer_stats_t* peers, size_t peers_capacity);

typedef struct shmring_channel_list shmring_channel_list_t;

/* The names of the live channels on this machine, as a list to read with the calls below and free
 * with shmring_channel_list_destroy. SHMRING_OK; SHMRING_INVALID_ARGUMENT (list NULL);
 * SHMRING_OUT_OF_MEMORY. */
shmring_status_t shmring_list_channels(shmring_channel_list_t** list);
size_t shmring_channel_list_size(const shmring_channel_list_t* list);
/* The index-th name; NULL when index >= size or list is NULL. Valid until the list is destroyed. */
const char* shmring_channel_list_name(const shmring_channel_list_t* list, size_t index);
void shmring_channel_list_destroy(shmring_channel_list_t* list);

/* Removes channel `name`'s name now: open endpoints keep working, new opens make a fresh channel.
 * SHMRING_OK; SHMRING_NOT_FOUND; SHMRING_INVALID_ARGUMENT; SHMRING_PERMISSION_DENIED. */
shmring_status_t shmring_remove_channel(const char* name);

/* ------------------------------------------------------------------------------------------ */
/* Services (since SHMRING_C_API_VERSION 3): request/response. Any number of clients send       */
/* requests; competing servers take each one (exactly one live server at a time) and answer it  */
/* with one response or a stream ending with a final one. The transport assigns request ids and */
/* routes responses; docs/services.md has the guarantees (a server killed while holding a       */
/* request: redelivered to another, or SHMRING_PEER_GONE when at_most_once).                    */
/* ------------------------------------------------------------------------------------------ */

/* Service options (the C++ ServiceOptions). The limits are the creator's; an opener's non-zero
 * value that differs is SHMRING_FAILED_PRECONDITION. */
typedef struct shmring_service_options {
  size_t struct_size;         /* set by shmring_service_options_init */
  uint64_t max_request;       /* bytes per request (0: creator default 256) */
  uint64_t max_response;      /* bytes per response (0: creator default 256) */
  uint32_t max_in_flight;     /* requests outstanding per client (0: creator default 16) */
  uint32_t response_depth;    /* responses buffered per request, a power of two (0: default 4) */
  uint32_t max_clients;       /* clients at once (0: creator default 16) */
  uint32_t max_servers;       /* servers at once (0: creator default 8) */
  uint32_t max_active;        /* requests one server holds at once (0: creator default 16) */
  uint32_t permissions;       /* mode bits of a service this call creates (default 0600) */
  int64_t group;              /* group of a service this call creates (-1: the creator's) */
  bool create;                /* false: only open an existing service (default true) */
  bool at_most_once;          /* client: a request whose server dies holding it is not given to
                                 another server; its pending response ends SHMRING_PEER_GONE */
  int32_t wait_strategy;      /* a shmring_wait_strategy_t value, by default SHMRING_WAIT_HYBRID */
  uint32_t spin_iterations;   /* default 2000 */
  uint32_t open_timeout_ms;   /* waiting for a creator to finish (default 2000) */
  int64_t request_timeout_ns; /* client: a request's deadline is its send time plus this (> 0;
                                 default 10 s); nothing waits past it */
} shmring_service_options_t;

void shmring_service_options_init(shmring_service_options_t* options);

typedef struct shmring_service_client shmring_service_client_t;
typedef struct shmring_service_server shmring_service_server_t;
/* A request a client sent, and the way to its responses (its own handle: several can be out). */
typedef struct shmring_pending_response shmring_pending_response_t;
/* A request a server holds until it answers it finally (its own handle: several can be held). */
typedef struct shmring_active_request shmring_active_request_t;

/* Opens (or creates) service `name` as a client. Errors as shmring_topic_publisher_open, and
 * SHMRING_RESOURCE_EXHAUSTED for max_clients clients. */
shmring_status_t shmring_service_client_open(const char* name, const shmring_service_options_t* options,
                                             shmring_service_client_t** client);
/* Closes (if open) and frees the handle; its pending responses become inert (SHMRING_CLOSED) and
 * must still be destroyed. NULL is fine. */
void shmring_service_client_destroy(shmring_service_client_t* client);
shmring_endpoint_t* shmring_service_client_endpoint(shmring_service_client_t* client);
/* Copies `request` in and sends it; on SHMRING_OK *pending is a new handle for its responses.
 * timeout_ns <= 0: never waits (SHMRING_WOULD_BLOCK: max_in_flight requests outstanding); else
 * waits up to it for a call to free up (SHMRING_TIMED_OUT). Also SHMRING_TOO_LARGE (more than
 * max_request), SHMRING_CLOSED, SHMRING_CORRUPT. */
shmring_status_t shmring_service_client_send_request(shmring_service_client_t* client, const void* request,
                                                     size_t size, int64_t timeout_ns,
                                                     shmring_pending_response_t** pending);
/* Zero-copy: a request buffer of max_request bytes (one loan at a time per client; it takes one
 * of the max_in_flight calls). Then send_loaned_request (SHMRING_TOO_LARGE or SHMRING_WOULD_BLOCK
 * keep the loan) or abandon_request. */
shmring_status_t shmring_service_client_loan_request(shmring_service_client_t* client, int64_t timeout_ns,
                                                     void** buffer, size_t* capacity);
shmring_status_t shmring_service_client_send_loaned_request(shmring_service_client_t* client, size_t size,
                                                            shmring_pending_response_t** pending);
shmring_status_t shmring_service_client_abandon_request(shmring_service_client_t* client);
/* Sends `request` and waits for its one final response, all within timeout_ns (> 0). Results as
 * shmring_pending_response_receive plus the send's; a response that is not final is
 * SHMRING_CORRUPT (use send_request for streams). */
shmring_status_t shmring_service_client_call(shmring_service_client_t* client, const void* request,
                                             size_t request_size, void* response, size_t response_capacity,
                                             size_t* response_size, int64_t timeout_ns);
/* The deadline of requests sent from now on: send time + timeout_ns (> 0). */
shmring_status_t shmring_service_client_set_request_timeout(shmring_service_client_t* client, int64_t timeout_ns);
/* 0 for NULL or closed. in_flight: calls taken (sent and not done, cancelled and not let go,
 * loaned); servers_approx: live servers now (a racy scan). */
uint64_t shmring_service_client_max_request(const shmring_service_client_t* client);
uint64_t shmring_service_client_max_response(const shmring_service_client_t* client);
uint32_t shmring_service_client_in_flight(const shmring_service_client_t* client);
uint32_t shmring_service_client_servers_approx(const shmring_service_client_t* client);

/* Copies the next response into `buffer` and sets *size, and *final (may be NULL) when it was the
 * last one. timeout_ns <= 0: never waits; else waits up to it, never past the request's deadline.
 * SHMRING_OK; SHMRING_WOULD_BLOCK (none yet); SHMRING_TIMED_OUT (or the deadline passed: then
 * done and expired); SHMRING_PEER_GONE (ended without a final response); SHMRING_TOO_LARGE
 * (`capacity` is short: nothing taken, *size says how long it is); SHMRING_CLOSED (done already,
 * or the client closed); SHMRING_CORRUPT. */
shmring_status_t shmring_pending_response_receive(shmring_pending_response_t* pending, void* buffer,
                                                  size_t capacity, size_t* size, bool* final,
                                                  int64_t timeout_ns);
/* Zero-copy: the next response in place until shmring_pending_response_release (one at a time:
 * SHMRING_WOULD_BLOCK while one is out). view->sequence is the request id; view->flags has
 * SHMRING_VIEW_FINAL and SHMRING_VIEW_REDELIVERED. */
shmring_status_t shmring_pending_response_view(shmring_pending_response_t* pending, int64_t timeout_ns,
                                               shmring_view_t* view);
shmring_status_t shmring_pending_response_release(shmring_pending_response_t* pending);
/* Waits up to timeout_ns (never past the deadline) until a receive would have something to say.
 * SHMRING_OK, SHMRING_TIMED_OUT, SHMRING_CLOSED. */
shmring_status_t shmring_pending_response_wait(shmring_pending_response_t* pending, int64_t timeout_ns);
/* The request id (the server's shmring_active_request_id); 0 for NULL. */
uint64_t shmring_pending_response_id(const shmring_pending_response_t* pending);
/* done: the final response was taken or the call ended; expired: the deadline passed before the
 * final response; redelivered: a response came from a server that took the request over. */
bool shmring_pending_response_done(const shmring_pending_response_t* pending);
bool shmring_pending_response_expired(const shmring_pending_response_t* pending);
bool shmring_pending_response_redelivered(const shmring_pending_response_t* pending);
/* Frees the handle; before the final response this cancels the request (its server sees
 * cancelled). Never waits. NULL is fine. */
void shmring_pending_response_destroy(shmring_pending_response_t* pending);

/* Opens (or creates) service `name` as a server (SHMRING_RESOURCE_EXHAUSTED: max_servers). */
shmring_status_t shmring_service_server_open(const char* name, const shmring_service_options_t* options,
                                             shmring_service_server_t** server);
/* Closes and frees the handle: requests it still holds go to another server (or end, at most
 * once); its active request handles become inert and must still be destroyed. NULL is fine. */
void shmring_service_server_destroy(shmring_service_server_t* server);
shmring_endpoint_t* shmring_service_server_endpoint(shmring_service_server_t* server);
/* Takes the next request (a redelivered one first); on SHMRING_OK *request is a new handle and
 * the request's bytes are in place (shmring_active_request_data). timeout_ns <= 0: never waits.
 * SHMRING_WOULD_BLOCK (none; or max_active held already), SHMRING_TIMED_OUT, SHMRING_CLOSED,
 * SHMRING_CORRUPT. */
shmring_status_t shmring_service_server_receive_request(shmring_service_server_t* server, int64_t timeout_ns,
                                                        shmring_active_request_t** request);
/* The same, also copying the request into `buffer` (capacity >= max_request, else
 * SHMRING_TOO_LARGE and nothing is taken) and setting *size. */
shmring_status_t shmring_service_server_receive_request_into(shmring_service_server_t* server, void* buffer,
                                                             size_t capacity, size_t* size, int64_t timeout_ns,
                                                             shmring_active_request_t** request);
/* 0 for NULL or closed. active: requests this server holds now. */
uint64_t shmring_service_server_max_request(const shmring_service_server_t* server);
uint64_t shmring_service_server_max_response(const shmring_service_server_t* server);
uint32_t shmring_service_server_max_active(const shmring_service_server_t* server);
uint32_t shmring_service_server_active(const shmring_service_server_t* server);

/* The request in place: valid until the final response, destroy, or the server's close. */
shmring_status_t shmring_active_request_data(const shmring_active_request_t* request, const void** data,
                                             size_t* size);
uint64_t shmring_active_request_id(const shmring_active_request_t* request);
/* expired: the deadline passed (the client stopped waiting: skip it); redelivered: taken over
 * from a server that died holding it (at-least-once); cancelled: the client cancelled or is gone
 * (what is written is dropped); finished: the final response was written (or it was dropped). */
bool shmring_active_request_expired(const shmring_active_request_t* request);
bool shmring_active_request_redelivered(const shmring_active_request_t* request);
bool shmring_active_request_cancelled(const shmring_active_request_t* request);
bool shmring_active_request_finished(const shmring_active_request_t* request);
/* Writes a response; `final` ends the request. wait false: never waits (SHMRING_WOULD_BLOCK: the
 * client has not taken the stream's earlier responses); true: waits for room up to the request's
 * deadline (SHMRING_TIMED_OUT). SHMRING_CANCELLED / SHMRING_PEER_GONE (nothing written; destroy the
 * request), SHMRING_TOO_LARGE (more than max_response), SHMRING_CLOSED (finished or closed). */
shmring_status_t shmring_active_request_respond(shmring_active_request_t* request, const void* data, size_t size,
                                                bool final, bool wait);
/* Zero-copy: a response buffer of max_response bytes (one at a time per request), then
 * respond_loaned (SHMRING_TOO_LARGE keeps the loan). Results as respond. */
shmring_status_t shmring_active_request_loan_response(shmring_active_request_t* request, bool wait, void** buffer,
                                                      size_t* capacity);
shmring_status_t shmring_active_request_respond_loaned(shmring_active_request_t* request, size_t size,
                                                       bool final);
/* Frees the handle; a request not finished is dropped: its client gets SHMRING_PEER_GONE. NULL is
 * fine. */
void shmring_active_request_destroy(shmring_active_request_t* request);

/* A service's counters, read from outside without disturbing it (the C++ ServiceStats). */
typedef struct shmring_service_stats {
  size_t struct_size; /* sizeof(shmring_service_stats_t): set it before the call */
  uint64_t max_request;
  uint64_t max_response;
  uint32_t max_in_flight;
  uint32_t response_depth;
  uint32_t max_clients;
  uint32_t max_servers;
  uint32_t max_active;
  uint32_t servers;           /* live servers */
  uint32_t clients;           /* live clients */
  uint64_t in_flight;         /* calls sent and not finished */
  uint64_t queued;            /* requests waiting for a server (approximate) */
  uint64_t held;              /* requests held by servers */
  uint64_t requests;          /* requests sent */
  uint64_t served;            /* final responses written */
  uint64_t redelivered;       /* requests handed to another server after theirs died */
  uint64_t expired;           /* requests whose deadline passed before their final response */
  uint64_t cancelled;         /* requests their client dropped before the final response */
  uint64_t peer_gone;         /* requests ended without a final response */
  uint64_t clients_reclaimed; /* areas of clients that left, made free again */
} shmring_service_stats_t;

/* SHMRING_OK; SHMRING_NOT_FOUND; SHMRING_FAILED_PRECONDITION (not a service); SHMRING_DATA_LOSS;
 * SHMRING_INVALID_ARGUMENT (bad name, NULL stats, struct_size too small); SHMRING_PERMISSION_DENIED. */
shmring_status_t shmring_read_service_stats(const char* name, shmring_service_stats_t* stats);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHMRING_SHMRING_H_ */
