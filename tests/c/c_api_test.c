/* The C API (shmring/shmring.h) from C11, every call's unhappy paths first: NULL and foreign
 * handles, NULL out-parameters, wrong sizes, bad options and names, closed endpoints, loans and
 * views used after their endpoint closed, second loans and views; then each pattern's copying
 * and zero-copy round trip, descriptors, counters, listing, removal, a consumer killed while it
 * holds a view, a lossy view overwritten, a lossless subscriber evicted, and the per-thread error
 * message. Runs under ASan/UBSan in the sanitizer builds.
 * A failed check prints its line and the test exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "shmring/shmring.h"

/* ---------------------------------------------------------------------------------------- */

static void null_handles_are_refused(void) {
  char buffer[64];
  size_t size = 0;
  void* loan = NULL;
  size_t capacity = 0;
  shmring_view_t view;
  int fd = 0;
  shmring_peer_stats_t peer;

  CHECK_STATUS(shmring_topic_publisher_send(NULL, "x", 1, 0), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "shmring_topic_publisher_send"));
  CHECK_STATUS(shmring_topic_publisher_loan(NULL, 0, 0, &loan, &capacity), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_publisher_publish(NULL, 1), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_publisher_abandon(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_topic_publisher_next_sequence(NULL) == 0);
  CHECK(shmring_topic_publisher_evictions(NULL) == 0);
  CHECK(!shmring_topic_publisher_lossless(NULL));
  CHECK_STATUS(shmring_topic_subscriber_receive(NULL, buffer, sizeof buffer, &size, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_subscriber_view(NULL, 0, &view), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_subscriber_release(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_topic_subscriber_lost(NULL) == 0 && shmring_topic_subscriber_received(NULL) == 0);
  CHECK(shmring_topic_subscriber_last_sequence(NULL) == 0 && !shmring_topic_subscriber_lossless(NULL));
  CHECK_STATUS(shmring_queue_producer_send(NULL, "x", 1, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_queue_producer_loan(NULL, 0, &loan, &capacity), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_queue_producer_publish(NULL, 1), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_queue_producer_abandon(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_queue_producer_capacity(NULL) == 0 && shmring_queue_producer_size_approx(NULL) == 0);
  CHECK_STATUS(shmring_queue_consumer_receive(NULL, buffer, sizeof buffer, &size, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_queue_consumer_view(NULL, 0, &view), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_queue_consumer_release(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_queue_consumer_capacity(NULL) == 0 && shmring_queue_consumer_size_approx(NULL) == 0);
  CHECK_STATUS(shmring_frame_publisher_send(NULL, "x", 1, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_frame_publisher_loan(NULL, 0, &loan, &capacity), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_frame_publisher_publish(NULL, 1), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_frame_publisher_abandon(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_frame_publisher_frames_published(NULL) == 0);
  CHECK_STATUS(shmring_frame_subscriber_receive(NULL, buffer, sizeof buffer, &size, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_frame_subscriber_view(NULL, 0, &view), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_frame_subscriber_release(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_frame_subscriber_lost(NULL) == 0 && shmring_frame_subscriber_received(NULL) == 0);
  /* The generic calls. */
  CHECK(shmring_topic_publisher_endpoint(NULL) == NULL && shmring_frame_subscriber_endpoint(NULL) == NULL);
  CHECK_STATUS(shmring_endpoint_close(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK(!shmring_endpoint_is_open(NULL));
  CHECK_STATUS(shmring_endpoint_wait_fd(NULL, &fd), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_endpoint_take_wait_events(NULL) == 0);
  CHECK_STATUS(shmring_endpoint_stats(NULL, &peer), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_endpoint_channel_incarnation(NULL) == 0 && shmring_endpoint_max_message(NULL) == 0);
  /* Destroying NULL is fine. */
  shmring_topic_publisher_destroy(NULL);
  shmring_topic_subscriber_destroy(NULL);
  shmring_queue_producer_destroy(NULL);
  shmring_queue_consumer_destroy(NULL);
  shmring_frame_publisher_destroy(NULL);
  shmring_frame_subscriber_destroy(NULL);
  shmring_channel_list_destroy(NULL);
}

static void foreign_and_wrong_kind_handles_are_refused(void) {
  shmring_topic_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_topic_subscriber_open(name_for("kind"), NULL, &sub), SHMRING_OK);
  /* A subscriber passed where a publisher is wanted, and a block of zeros. */
  shmring_topic_publisher_t* wrong = (shmring_topic_publisher_t*)sub;
  CHECK_STATUS(shmring_topic_publisher_send(wrong, "x", 1, 0), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "handle"));
  CHECK_STATUS(shmring_queue_consumer_release((shmring_queue_consumer_t*)sub), SHMRING_INVALID_ARGUMENT);
  shmring_topic_publisher_destroy(wrong); /* not a publisher: ignored, the subscriber lives on */
  CHECK(shmring_endpoint_is_open(shmring_topic_subscriber_endpoint(sub)));
  static uint64_t zeros[16];
  CHECK_STATUS(shmring_endpoint_close((shmring_endpoint_t*)zeros), SHMRING_INVALID_ARGUMENT);
  CHECK(!shmring_endpoint_is_open((const shmring_endpoint_t*)zeros));
  CHECK_STATUS(shmring_queue_producer_send((shmring_queue_producer_t*)zeros, "x", 1, 0), SHMRING_INVALID_ARGUMENT);
  shmring_topic_subscriber_destroy(sub);
}

static void null_arguments_are_refused(void) {
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_subscriber_t* sub = NULL;
  const char* name = name_for("nullarg");
  CHECK_STATUS(shmring_topic_publisher_open(name, NULL, NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_publisher_open(NULL, NULL, &pub), SHMRING_INVALID_ARGUMENT);
  CHECK(pub == NULL);
  CHECK(contains(shmring_last_error(), "name is NULL"));
  CHECK_STATUS(shmring_topic_publisher_open(name, NULL, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_open(name, NULL, &sub), SHMRING_OK);
  char buffer[64];
  size_t size = 0;
  void* loan = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_topic_publisher_send(pub, NULL, 5, 0), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "data"));
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, buffer, sizeof buffer, NULL, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, NULL, 8, &size, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_subscriber_view(sub, 0, NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_publisher_loan(pub, 0, 0, NULL, &capacity), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_topic_publisher_loan(pub, 0, 0, &loan, NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_endpoint_wait_fd(shmring_topic_subscriber_endpoint(sub), NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_endpoint_stats(shmring_topic_subscriber_endpoint(sub), NULL), SHMRING_INVALID_ARGUMENT);
  /* An empty message (NULL data, size 0) is a message. */
  CHECK_STATUS(shmring_topic_publisher_send(pub, NULL, 0, 0), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, NULL, 0, &size, 0), SHMRING_OK);
  CHECK(size == 0);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);
}

static void wrong_sizes(void) {
  const char* name = name_for("sizes");
  shmring_topic_options_t options;
  shmring_topic_options_init(&options);
  options.max_message = 64;
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(name, &options, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_open(name, &options, &sub), SHMRING_OK);
  CHECK(shmring_endpoint_max_message(shmring_topic_subscriber_endpoint(sub)) == 64);
  char big[65] = {0};
  CHECK_STATUS(shmring_topic_publisher_send(pub, big, sizeof big, 0), SHMRING_TOO_LARGE);
  CHECK_STATUS(shmring_topic_publisher_send(pub, "0123456789", 10, 0), SHMRING_OK);
  /* A short buffer: refused, not consumed, and told how long the message is. */
  char small[4];
  size_t size = 0;
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, small, sizeof small, &size, 0), SHMRING_TOO_LARGE);
  CHECK(size == 10);
  char right[64];
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, right, sizeof right, &size, 0), SHMRING_OK);
  CHECK(size == 10 && memcmp(right, "0123456789", 10) == 0);
  /* A loan larger than max_message; publishing more than the loan (the loan is kept). */
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_topic_publisher_loan(pub, 65, 0, &buffer, &capacity), SHMRING_TOO_LARGE);
  CHECK(buffer == NULL && capacity == 0);
  CHECK_STATUS(shmring_topic_publisher_loan(pub, 8, 0, &buffer, &capacity), SHMRING_OK);
  CHECK(buffer != NULL && capacity >= 8);
  CHECK_STATUS(shmring_topic_publisher_publish(pub, capacity + 1), SHMRING_TOO_LARGE);
  memcpy(buffer, "loaned!", 8);
  CHECK_STATUS(shmring_topic_publisher_publish(pub, 8), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_publish(pub, 8), SHMRING_CLOSED); /* no loan out any more */
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, right, sizeof right, &size, 0), SHMRING_OK);
  CHECK(size == 8 && strcmp(right, "loaned!") == 0);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);

  /* A queue hands out whole slots: a buffer shorter than max_message is refused. */
  const char* qname = name_for("qsizes");
  shmring_queue_producer_t* producer = NULL;
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(qname, NULL, &producer), SHMRING_OK);
  CHECK_STATUS(shmring_queue_consumer_open(qname, NULL, &consumer), SHMRING_OK);
  CHECK_STATUS(shmring_queue_producer_send(producer, "abc", 3, 0), SHMRING_OK);
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, small, sizeof small, &size, 0), SHMRING_TOO_LARGE);
  char slot[256];
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, 0), SHMRING_OK);
  CHECK(size == 3);
  char huge[257] = {0};
  CHECK_STATUS(shmring_queue_producer_send(producer, huge, sizeof huge, 0), SHMRING_TOO_LARGE);
  shmring_queue_consumer_destroy(consumer);
  shmring_queue_producer_destroy(producer);
}

static void bad_options_and_names(void) {
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_options_t options;
  memset(&options, 0, sizeof options); /* forgot shmring_topic_options_init */
  CHECK_STATUS(shmring_topic_publisher_open(name_for("opt"), &options, &pub), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "struct_size") && contains(shmring_last_error(), "shmring_topic_publisher_open"));

  shmring_topic_options_init(&options);
  options.wait_strategy = 17;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("opt"), &options, &pub), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "wait_strategy"));
  shmring_topic_options_init(&options);
  options.permissions = 010000;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("opt"), &options, &pub), SHMRING_INVALID_ARGUMENT);
  shmring_topic_options_init(&options);
  options.group = -2;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("opt"), &options, &pub), SHMRING_INVALID_ARGUMENT);
  shmring_topic_options_init(&options);
  options.capacity = 1000; /* not a power of two */
  CHECK_STATUS(shmring_topic_publisher_open(name_for("opt"), &options, &pub), SHMRING_INVALID_ARGUMENT);
  shmring_topic_options_init(&options);
  options.create = false;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("missing"), &options, &pub), SHMRING_NOT_FOUND);

  /* A newer program's longer struct: zeros past what this library knows are fine, anything else
   * is refused. */
  struct {
    shmring_topic_options_t known;
    uint64_t newer_field;
  } longer;
  shmring_topic_options_init(&longer.known);
  longer.known.struct_size = sizeof longer;
  longer.newer_field = 0;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("longer"), &longer.known, &pub), SHMRING_OK);
  shmring_topic_publisher_destroy(pub);
  pub = NULL;
  longer.newer_field = 1;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("longer"), &longer.known, &pub), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "does not know"));
  /* An older program's shorter struct (up to max_message): the rest takes the defaults. */
  shmring_topic_options_init(&options);
  options.max_message = 100;
  options.lossless = true; /* beyond the short struct: must be ignored */
  options.struct_size = offsetof(shmring_topic_options_t, max_message) + sizeof options.max_message;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("shorter"), &options, &pub), SHMRING_OK);
  CHECK(!shmring_topic_publisher_lossless(pub));
  CHECK(shmring_endpoint_max_message(shmring_topic_publisher_endpoint(pub)) == 100);
  shmring_topic_publisher_destroy(pub);

  shmring_queue_options_t queue;
  shmring_queue_options_init(&queue);
  queue.struct_size = 3;
  shmring_queue_producer_t* producer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(name_for("q"), &queue, &producer), SHMRING_INVALID_ARGUMENT);
  shmring_frame_options_t frames;
  shmring_frame_options_init(&frames);
  frames.capacity = 2; /* at least 3 */
  shmring_frame_publisher_t* fpub = NULL;
  CHECK_STATUS(shmring_frame_publisher_open(name_for("f"), &frames, &fpub), SHMRING_INVALID_ARGUMENT);
  shmring_topic_options_init(NULL); /* ignored */

  /* Names: empty, with a '/', longer than 128 bytes. */
  char long_name[200];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  const char* bad_names[] = {"", "a/b", long_name};
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; ++i) {
    CHECK_STATUS(shmring_topic_publisher_open(bad_names[i], NULL, &pub), SHMRING_INVALID_ARGUMENT);
    CHECK(pub == NULL);
    CHECK_STATUS(shmring_queue_consumer_open(bad_names[i], NULL, (shmring_queue_consumer_t**)&producer),
                 SHMRING_INVALID_ARGUMENT);
  }
}

static void kinds_and_publishers_must_match(void) {
  const char* name = name_for("match");
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_publisher_t* second = NULL;
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(name, NULL, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_open(name, NULL, &second), SHMRING_FAILED_PRECONDITION);
  CHECK(second == NULL);
  CHECK(contains(shmring_last_error(), "shmring_topic_publisher_open"));
  CHECK_STATUS(shmring_queue_consumer_open(name, NULL, &consumer), SHMRING_FAILED_PRECONDITION);
  shmring_topic_options_t options;
  shmring_topic_options_init(&options);
  options.lossless = true; /* the topic is lossy: delivery is each subscriber's choice */
  shmring_topic_subscriber_t* sub = NULL;
  shmring_topic_subscriber_t* lossy = NULL;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &options, &sub), SHMRING_OK);
  CHECK(shmring_topic_subscriber_lossless(sub));
  CHECK_STATUS(shmring_topic_subscriber_open(name, NULL, &lossy), SHMRING_OK);
  CHECK(!shmring_topic_subscriber_lossless(lossy)); /* the creator's default */
  CHECK(!shmring_topic_publisher_lossless(pub));
  shmring_topic_subscriber_destroy(lossy);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);
}

/* Version 2's topic options: several publishers, history for late joiners, each subscriber's
 * delivery and start; a version-1 struct (shorter) keeps version 1's behaviour; mistakes are
 * refused with a message. */
static void topic_options_of_version_2(void) {
  const char* name = name_for("v2");
  shmring_topic_options_t options;
  shmring_topic_options_init(&options);
  CHECK(options.max_publishers == 0 && options.history == 0 && options.delivery == SHMRING_DELIVERY_DEFAULT &&
        options.start == SHMRING_START_LIVE && options.start_count == 0);
  options.max_publishers = 2;
  options.history = 8;
  options.capacity = 1 << 16;
  options.max_message = 64;
  shmring_topic_publisher_t* a = NULL;
  shmring_topic_publisher_t* b = NULL;
  shmring_topic_publisher_t* third = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(name, &options, &a), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_open(name, NULL, &b), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_open(name, NULL, &third), SHMRING_FAILED_PRECONDITION);
  CHECK(shmring_topic_publisher_max_publishers(a) == 2 && shmring_topic_publisher_history(b) == 8);
  const uint32_t id_a = shmring_topic_publisher_id(a);
  const uint32_t id_b = shmring_topic_publisher_id(b);
  CHECK(id_a != 0 && id_b != 0 && id_a != id_b);
  /* A live subscriber, opened before anything is sent; a lossless one by its own choice. */
  shmring_topic_options_t sub_options;
  shmring_topic_options_init(&sub_options);
  sub_options.delivery = SHMRING_DELIVERY_LOSSLESS;
  shmring_topic_subscriber_t* careful = NULL;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &careful), SHMRING_OK);
  CHECK(shmring_topic_subscriber_delivery(careful) == SHMRING_DELIVERY_LOSSLESS);
  char text[16];
  for (int i = 0; i < 40; ++i) {
    snprintf(text, sizeof text, "%c%d", i % 2 ? 'b' : 'a', i / 2);
    CHECK_STATUS(shmring_topic_publisher_send(i % 2 ? b : a, text, strlen(text), 0), SHMRING_OK);
  }
  CHECK(shmring_topic_publisher_published(a) == 20 && shmring_topic_publisher_published(b) == 20);
  char got[64];
  size_t size = 0;
  for (int i = 0; i < 40; ++i) {
    CHECK_STATUS(shmring_topic_subscriber_receive(careful, got, sizeof got, &size, 0), SHMRING_OK);
    snprintf(text, sizeof text, "%c%d", i % 2 ? 'b' : 'a', i / 2);
    CHECK(size == strlen(text) && memcmp(got, text, size) == 0);
    CHECK(shmring_topic_subscriber_last_publisher(careful) == (i % 2 ? id_b : id_a));
    CHECK(shmring_topic_subscriber_last_publisher_sequence(careful) == (uint64_t)(i / 2));
  }
  /* Late joiners: the last 3; the newest; the oldest the ring holds; more than was ever sent. */
  shmring_topic_options_init(&sub_options);
  sub_options.start = SHMRING_START_HISTORY;
  sub_options.start_count = 3;
  shmring_topic_subscriber_t* late = NULL;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_OK);
  const char* want[] = {"b18", "a19", "b19"};
  for (int i = 0; i < 3; ++i) {
    CHECK_STATUS(shmring_topic_subscriber_receive(late, got, sizeof got, &size, 0), SHMRING_OK);
    CHECK(size == strlen(want[i]) && memcmp(got, want[i], size) == 0);
  }
  CHECK_STATUS(shmring_topic_subscriber_receive(late, got, sizeof got, &size, 0), SHMRING_WOULD_BLOCK);
  CHECK(shmring_topic_subscriber_history_missed(late) == 0);
  shmring_topic_subscriber_destroy(late);
  sub_options.start = SHMRING_START_OLDEST;
  sub_options.start_count = 0;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_OK);
  int oldest = 0;
  while (shmring_topic_subscriber_receive(late, got, sizeof got, &size, 0) == SHMRING_OK) ++oldest;
  CHECK(oldest == 40); /* a 64 KiB ring keeps all 40 */
  shmring_topic_subscriber_destroy(late);
  sub_options.start = SHMRING_START_LATEST;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_receive(late, got, sizeof got, &size, 0), SHMRING_OK);
  CHECK(size == 3 && memcmp(got, "b19", 3) == 0);
  shmring_topic_subscriber_destroy(late);

  /* Mistakes: unknown delivery or start, contradictions, a count without a history start. */
  shmring_topic_options_init(&sub_options);
  sub_options.delivery = 7;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "shmring_topic_delivery_t"));
  shmring_topic_options_init(&sub_options);
  sub_options.delivery = SHMRING_DELIVERY_LOSSY;
  sub_options.lossless = true;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "contradicts"));
  shmring_topic_options_init(&sub_options);
  sub_options.start = 9;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "shmring_topic_start_t"));
  shmring_topic_options_init(&sub_options);
  sub_options.start = SHMRING_START_OLDEST;
  sub_options.start_at_latest = true;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "not both"));
  shmring_topic_options_init(&sub_options);
  sub_options.start_count = 5;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "start_count"));
  shmring_topic_options_init(&sub_options);
  sub_options.history = 9; /* the creator said 8 */
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_FAILED_PRECONDITION);
  CHECK(late == NULL);

  /* A version-1 program's struct ends at trusted_owner_count: what lies beyond is not read. */
  shmring_topic_options_init(&sub_options);
  sub_options.start = SHMRING_START_OLDEST;  /* beyond the short struct: ignored */
  sub_options.delivery = 99;                 /* ignored too, not refused */
  sub_options.struct_size = offsetof(shmring_topic_options_t, trusted_owner_count) + sizeof sub_options.trusted_owner_count;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &sub_options, &late), SHMRING_OK);
  CHECK(shmring_topic_subscriber_delivery(late) == SHMRING_DELIVERY_LOSSY);
  CHECK_STATUS(shmring_topic_subscriber_receive(late, got, sizeof got, &size, 0), SHMRING_WOULD_BLOCK); /* live */
  shmring_topic_subscriber_destroy(late);

  /* Closed and NULL handles answer zeros. */
  CHECK_STATUS(shmring_endpoint_close(shmring_topic_publisher_endpoint(b)), SHMRING_OK);
  CHECK(shmring_topic_publisher_id(b) == 0 && shmring_topic_publisher_published(b) == 0);
  CHECK(shmring_topic_publisher_max_publishers(NULL) == 0 && shmring_topic_publisher_history(NULL) == 0);
  CHECK(shmring_topic_subscriber_delivery(NULL) == SHMRING_DELIVERY_DEFAULT);
  CHECK(shmring_topic_subscriber_last_publisher(NULL) == 0 && shmring_topic_subscriber_history_missed(NULL) == 0);
  CHECK(shmring_topic_subscriber_last_publisher_sequence(NULL) == 0);
  shmring_topic_subscriber_destroy(careful);
  shmring_topic_publisher_destroy(b);
  shmring_topic_publisher_destroy(a);
}

static void closed_endpoints_answer_closed(void) {
  const char* name = name_for("closed");
  shmring_queue_producer_t* producer = NULL;
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(name, NULL, &producer), SHMRING_OK);
  CHECK_STATUS(shmring_queue_consumer_open(name, NULL, &consumer), SHMRING_OK);
  shmring_endpoint_t* p = shmring_queue_producer_endpoint(producer);
  shmring_endpoint_t* c = shmring_queue_consumer_endpoint(consumer);
  CHECK(shmring_endpoint_is_open(p) && shmring_endpoint_is_open(c));
  CHECK_STATUS(shmring_endpoint_close(p), SHMRING_OK);
  CHECK_STATUS(shmring_endpoint_close(p), SHMRING_OK); /* idempotent */
  CHECK(!shmring_endpoint_is_open(p));
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_queue_producer_send(producer, "x", 1, 0), SHMRING_CLOSED);
  CHECK_STATUS(shmring_queue_producer_send(producer, "x", 1, 10 * MS), SHMRING_CLOSED);
  CHECK_STATUS(shmring_queue_producer_loan(producer, 0, &buffer, &capacity), SHMRING_CLOSED);
  CHECK(buffer == NULL);
  CHECK_STATUS(shmring_queue_producer_publish(producer, 1), SHMRING_CLOSED);
  CHECK_STATUS(shmring_queue_producer_abandon(producer), SHMRING_OK);
  CHECK(shmring_queue_producer_capacity(producer) == 0 && shmring_endpoint_max_message(p) == 0);
  int fd = 0;
  CHECK_STATUS(shmring_endpoint_wait_fd(p, &fd), SHMRING_CLOSED);
  CHECK(fd == -1);
  shmring_peer_stats_t stats;
  CHECK_STATUS(shmring_endpoint_stats(p, &stats), SHMRING_CLOSED);
  CHECK(shmring_endpoint_take_wait_events(p) == 0 && shmring_endpoint_channel_incarnation(p) == 0);
  CHECK_STATUS(shmring_endpoint_close(c), SHMRING_OK);
  char slot[256];
  size_t size = 0;
  shmring_view_t view;
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, 0), SHMRING_CLOSED);
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, 10 * MS), SHMRING_CLOSED);
  CHECK_STATUS(shmring_queue_consumer_view(consumer, 0, &view), SHMRING_CLOSED);
  CHECK(view.data == NULL && view.size == 0);
  shmring_queue_consumer_destroy(consumer);
  shmring_queue_producer_destroy(producer);
}

static void loans_and_views_after_close(void) {
  const char* name = name_for("lease");
  shmring_frame_publisher_t* pub = NULL;
  shmring_frame_subscriber_t* sub = NULL;
  shmring_frame_options_t options;
  shmring_frame_options_init(&options);
  options.max_message = 4096;
  CHECK_STATUS(shmring_frame_publisher_open(name, &options, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_frame_subscriber_open(name, &options, &sub), SHMRING_OK);
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_frame_publisher_loan(pub, 0, &buffer, &capacity), SHMRING_OK);
  CHECK(capacity == 4096);
  /* A second loan while one is out: refused; the first is untouched. */
  void* again = NULL;
  CHECK_STATUS(shmring_frame_publisher_loan(pub, 0, &again, &capacity), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_frame_publisher_send(pub, "x", 1, 0), SHMRING_WOULD_BLOCK);
  memset(buffer, 7, 4096);
  CHECK_STATUS(shmring_frame_publisher_publish(pub, 4096), SHMRING_OK);
  shmring_view_t view;
  CHECK_STATUS(shmring_frame_subscriber_view(sub, 0, &view), SHMRING_OK);
  CHECK(view.size == 4096 && ((const unsigned char*)view.data)[4095] == 7 && view.sequence == 1);
  shmring_view_t second;
  CHECK_STATUS(shmring_frame_subscriber_view(sub, 0, &second), SHMRING_WOULD_BLOCK);
  size_t size = 0;
  static char copy[4096];
  CHECK_STATUS(shmring_frame_subscriber_receive(sub, copy, sizeof copy, &size, 0), SHMRING_WOULD_BLOCK);
  /* The view stays good (pinned) while it is out, and the first is still the one released. */
  CHECK(((const unsigned char*)view.data)[0] == 7);
  /* Close with a view out: the view is settled by the close; releasing it says so. */
  CHECK_STATUS(shmring_endpoint_close(shmring_frame_subscriber_endpoint(sub)), SHMRING_OK);
  CHECK_STATUS(shmring_frame_subscriber_release(sub), SHMRING_CLOSED);
  CHECK_STATUS(shmring_frame_subscriber_release(sub), SHMRING_OK); /* nothing out any more */
  /* A loan out when the publisher closes: publishing it is refused. */
  CHECK_STATUS(shmring_frame_publisher_loan(pub, 0, &buffer, &capacity), SHMRING_OK);
  CHECK_STATUS(shmring_endpoint_close(shmring_frame_publisher_endpoint(pub)), SHMRING_OK);
  CHECK_STATUS(shmring_frame_publisher_publish(pub, 1), SHMRING_CLOSED);
  CHECK_STATUS(shmring_frame_publisher_abandon(pub), SHMRING_OK);
  shmring_frame_subscriber_destroy(sub);
  shmring_frame_publisher_destroy(pub);

  /* A topic view released after the publisher moved on is still fine (lossless keeps it). */
  const char* tname = name_for("tlease");
  shmring_topic_publisher_t* tpub = NULL;
  shmring_topic_subscriber_t* tsub = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(tname, NULL, &tpub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_open(tname, NULL, &tsub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_send(tpub, "one", 3, 0), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_view(tsub, 0, &view), SHMRING_OK);
  CHECK(view.size == 3 && memcmp(view.data, "one", 3) == 0);
  char text[8];
  CHECK_STATUS(shmring_topic_subscriber_receive(tsub, text, sizeof text, &size, 0), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_topic_subscriber_release(tsub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_release(tsub), SHMRING_OK);
  shmring_topic_subscriber_destroy(tsub); /* with nothing out */
  CHECK_STATUS(shmring_topic_publisher_loan(tpub, 4, 0, &buffer, &capacity), SHMRING_OK);
  shmring_topic_publisher_destroy(tpub); /* with a loan out: given up */
}

static void timeouts(void) {
  const char* name = name_for("timeouts");
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_queue_consumer_open(name, NULL, &consumer), SHMRING_OK);
  char slot[256];
  size_t size = 0;
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, 0), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, -5), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, 2 * MS), SHMRING_TIMED_OUT);
  shmring_view_t view;
  CHECK_STATUS(shmring_queue_consumer_view(consumer, 2 * MS, &view), SHMRING_TIMED_OUT);
  shmring_queue_consumer_destroy(consumer);

  /* A full queue: the producer's send and loan wait, then time out. */
  shmring_queue_options_t options;
  shmring_queue_options_init(&options);
  options.capacity = 2;
  shmring_queue_producer_t* producer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(name_for("full"), &options, &producer), SHMRING_OK);
  CHECK(shmring_queue_producer_capacity(producer) == 2);
  CHECK_STATUS(shmring_queue_producer_send(producer, "a", 1, 0), SHMRING_OK);
  CHECK_STATUS(shmring_queue_producer_send(producer, "b", 1, 0), SHMRING_OK);
  CHECK(shmring_queue_producer_size_approx(producer) == 2);
  CHECK_STATUS(shmring_queue_producer_send(producer, "c", 1, 0), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_queue_producer_send(producer, "c", 1, 2 * MS), SHMRING_TIMED_OUT);
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_queue_producer_loan(producer, 2 * MS, &buffer, &capacity), SHMRING_TIMED_OUT);
  shmring_queue_producer_destroy(producer);
}

static void queue_round_trips_and_redelivery(void) {
  const char* name = name_for("queue");
  shmring_queue_producer_t* producer = NULL;
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(name, NULL, &producer), SHMRING_OK);
  CHECK_STATUS(shmring_queue_consumer_open(name, NULL, &consumer), SHMRING_OK);
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_queue_producer_loan(producer, 0, &buffer, &capacity), SHMRING_OK);
  CHECK(capacity == 256);
  CHECK_STATUS(shmring_queue_producer_loan(producer, 0, &buffer, &capacity), SHMRING_WOULD_BLOCK);
  CHECK(buffer == NULL);
  CHECK_STATUS(shmring_queue_producer_abandon(producer), SHMRING_OK);
  CHECK_STATUS(shmring_queue_producer_loan(producer, 0, &buffer, &capacity), SHMRING_OK);
  memcpy(buffer, "in place", 9);
  CHECK_STATUS(shmring_queue_producer_publish(producer, 9), SHMRING_OK);
  shmring_view_t view;
  CHECK_STATUS(shmring_queue_consumer_view(consumer, 100 * MS, &view), SHMRING_OK);
  CHECK(view.size == 9 && strcmp(view.data, "in place") == 0 && view.flags == 0);
  CHECK_STATUS(shmring_queue_consumer_release(consumer), SHMRING_OK);
  CHECK(shmring_queue_consumer_capacity(consumer) == 1024);

  /* A consumer killed while it holds a view: another consumer gets the item, redelivered. */
  CHECK_STATUS(shmring_queue_producer_send(producer, "precious", 9, 0), SHMRING_OK);
  fflush(NULL);
  const pid_t child = fork();
  if (child == 0) {
    shmring_queue_consumer_t* doomed = NULL;
    shmring_view_t held;
    if (shmring_queue_consumer_open(name, NULL, &doomed) != SHMRING_OK) _exit(2);
    if (shmring_queue_consumer_view(doomed, 2000 * MS, &held) != SHMRING_OK) _exit(3);
    kill(getpid(), SIGKILL);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  CHECK_STATUS(shmring_queue_consumer_view(consumer, 5000 * MS, &view), SHMRING_OK);
  CHECK(view.size == 9 && strcmp(view.data, "precious") == 0);
  CHECK(view.flags & SHMRING_VIEW_REDELIVERED);
  CHECK_STATUS(shmring_queue_consumer_release(consumer), SHMRING_OK);
  shmring_channel_stats_t stats;
  stats.struct_size = sizeof stats;
  CHECK_STATUS(shmring_read_stats(name, &stats, NULL, 0), SHMRING_OK);
  CHECK(stats.items_redelivered == 1 && stats.kind == SHMRING_KIND_QUEUE);
  shmring_queue_consumer_destroy(consumer);
  shmring_queue_producer_destroy(producer);
}

static void topic_counters_lossless_and_descriptors(void) {
  const char* name = name_for("topic");
  shmring_topic_options_t options;
  shmring_topic_options_init(&options);
  options.lossless = true;
  options.capacity = 4096;
  options.max_message = 64;
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &options, &sub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_open(name, &options, &pub), SHMRING_OK);
  CHECK(shmring_topic_publisher_lossless(pub) && shmring_topic_subscriber_lossless(sub));
  shmring_endpoint_t* s = shmring_topic_subscriber_endpoint(sub);
  int fd = -1;
  CHECK_STATUS(shmring_endpoint_wait_fd(s, &fd), SHMRING_OK);
  CHECK(fd >= 0);
  int again = -1;
  CHECK_STATUS(shmring_endpoint_wait_fd(s, &again), SHMRING_OK);
  CHECK(again == fd);
  /* The protocol: drain with timeout 0 until SHMRING_WOULD_BLOCK (arms it), then it stays quiet
   * until a message comes. */
  char text[64];
  size_t size = 0;
  while (shmring_topic_subscriber_receive(sub, text, sizeof text, &size, 0) == SHMRING_OK) {
  }
  (void)shmring_endpoint_take_wait_events(s);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  CHECK(poll(&p, 1, 0) == 0);
  const uint64_t first = shmring_topic_publisher_next_sequence(pub);
  CHECK_STATUS(shmring_topic_publisher_send(pub, "tick", 4, 0), SHMRING_OK);
  CHECK(poll(&p, 1, 5000) == 1);
  CHECK(shmring_endpoint_take_wait_events(s) & SHMRING_EVENT_DATA);
  CHECK_STATUS(shmring_topic_subscriber_receive(sub, text, sizeof text, &size, 0), SHMRING_OK);
  CHECK(size == 4 && shmring_topic_subscriber_last_sequence(sub) == first);
  CHECK(shmring_topic_subscriber_received(sub) == 1 && shmring_topic_subscriber_lost(sub) == 0);
  /* Lossless: a subscriber that does not read holds the publisher back. */
  shmring_status_t st = SHMRING_OK;
  int sent = 0;
  while ((st = shmring_topic_publisher_send(pub, "0123456789abcdef", 16, 0)) == SHMRING_OK) ++sent;
  CHECK_STATUS(st, SHMRING_WOULD_BLOCK);
  CHECK(sent > 10);
  CHECK_STATUS(shmring_topic_publisher_send(pub, "0123456789abcdef", 16, 2 * MS), SHMRING_TIMED_OUT);
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_topic_publisher_loan(pub, 16, 0, &buffer, &capacity), SHMRING_WOULD_BLOCK);
  CHECK(shmring_topic_publisher_evictions(pub) == 0);
  /* Counters from outside, with the peers. */
  shmring_channel_stats_t stats;
  shmring_peer_stats_t peers[4];
  stats.struct_size = sizeof stats;
  CHECK_STATUS(shmring_read_stats(name, &stats, peers, 4), SHMRING_OK);
  CHECK(strcmp(stats.name, name) == 0 && stats.kind == SHMRING_KIND_TOPIC && stats.lossless);
  CHECK(stats.capacity == 4096 && stats.max_message == 64 && stats.peer_count == 2);
  CHECK(stats.sent == (uint64_t)sent + 1);
  int roles = 0;
  for (uint32_t i = 0; i < stats.peer_count; ++i) {
    roles |= 1 << peers[i].role;
    CHECK(peers[i].alive && peers[i].pid == getpid());
  }
  CHECK(roles == ((1 << SHMRING_ROLE_PUBLISHER) | (1 << SHMRING_ROLE_SUBSCRIBER)));
  shmring_peer_stats_t mine;
  CHECK_STATUS(shmring_endpoint_stats(shmring_topic_publisher_endpoint(pub), &mine), SHMRING_OK);
  CHECK(mine.role == SHMRING_ROLE_PUBLISHER && mine.sent == (uint64_t)sent + 1);
  CHECK(shmring_endpoint_channel_incarnation(s) != 0 &&
        shmring_endpoint_channel_incarnation(s) ==
            shmring_endpoint_channel_incarnation(shmring_topic_publisher_endpoint(pub)));
  shmring_topic_publisher_destroy(pub);
  shmring_topic_subscriber_destroy(sub);

  /* A read_only subscriber has no descriptor (nobody can wake it) and no slot. */
  const char* ro = name_for("ro");
  shmring_topic_publisher_t* rpub = NULL;
  shmring_topic_subscriber_t* rsub = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(ro, NULL, &rpub), SHMRING_OK);
  shmring_topic_options_init(&options);
  options.read_only = true;
  CHECK_STATUS(shmring_topic_subscriber_open(ro, &options, &rsub), SHMRING_OK);
  CHECK_STATUS(shmring_endpoint_wait_fd(shmring_topic_subscriber_endpoint(rsub), &fd), SHMRING_FAILED_PRECONDITION);
  CHECK(contains(shmring_last_error(), "read_only"));
  CHECK_STATUS(shmring_topic_publisher_send(rpub, "hi", 2, 0), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_receive(rsub, text, sizeof text, &size, 1000 * MS), SHMRING_OK);
  shmring_topic_subscriber_destroy(rsub);
  shmring_topic_publisher_destroy(rpub);
}

static void lossy_topic_counts_what_a_slow_subscriber_lost(void) {
  const char* name = name_for("lossy");
  shmring_topic_options_t options;
  shmring_topic_options_init(&options);
  options.capacity = 4096;
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(name, &options, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_open(name, &options, &sub), SHMRING_OK);
  char message[100] = {0};
  for (int i = 0; i < 1000; ++i) CHECK_STATUS(shmring_topic_publisher_send(pub, message, sizeof message, 0), SHMRING_OK);
  size_t size = 0;
  uint64_t received = 0;
  while (shmring_topic_subscriber_receive(sub, message, sizeof message, &size, 0) == SHMRING_OK) ++received;
  CHECK(shmring_topic_subscriber_lost(sub) > 0);
  CHECK(received + shmring_topic_subscriber_lost(sub) == 1000);
  /* A view the publisher laps while it is held: release says so, and it counts as lost. */
  CHECK_STATUS(shmring_topic_publisher_send(pub, message, sizeof message, 0), SHMRING_OK);
  shmring_view_t view;
  CHECK_STATUS(shmring_topic_subscriber_view(sub, 0, &view), SHMRING_OK);
  const uint64_t lost_before = shmring_topic_subscriber_lost(sub);
  for (int i = 0; i < 100; ++i) CHECK_STATUS(shmring_topic_publisher_send(pub, message, sizeof message, 0), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_release(sub), SHMRING_OVERWRITTEN);
  CHECK(shmring_topic_subscriber_lost(sub) > lost_before);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);
}

static void lossless_publisher_evicts_a_subscriber_that_holds_it_back(void) {
  const char* name = name_for("evict");
  shmring_topic_options_t options;
  shmring_topic_options_init(&options);
  options.lossless = true;
  options.capacity = 4096;
  options.evict_after_ms = 1;
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_topic_subscriber_open(name, &options, &sub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_publisher_open(name, &options, &pub), SHMRING_OK);
  char message[100] = {0};
  shmring_status_t st = SHMRING_OK;
  for (int i = 0; i < 1000 && st == SHMRING_OK; ++i) st = shmring_topic_publisher_send(pub, message, sizeof message, 5000 * MS);
  CHECK_STATUS(st, SHMRING_OK);
  CHECK(shmring_topic_publisher_evictions(pub) == 1);
  size_t size = 0;
  while ((st = shmring_topic_subscriber_receive(sub, message, sizeof message, &size, 0)) == SHMRING_OK) {
  }
  CHECK_STATUS(st, SHMRING_EVICTED);
  uint32_t events = shmring_endpoint_take_wait_events(shmring_topic_subscriber_endpoint(sub));
  (void)events; /* no descriptor was made: nothing to report */
  CHECK(events == 0);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);
}

static void stats_listing_and_removal(void) {
  shmring_channel_stats_t stats;
  memset(&stats, 0, sizeof stats);
  CHECK_STATUS(shmring_read_stats(NULL, &stats, NULL, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_read_stats("x", NULL, NULL, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_read_stats("x", &stats, NULL, 0), SHMRING_INVALID_ARGUMENT); /* struct_size 0 */
  CHECK(contains(shmring_last_error(), "struct_size"));
  stats.struct_size = sizeof stats;
  CHECK_STATUS(shmring_read_stats("x", &stats, NULL, 3), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_read_stats(name_for("nothing"), &stats, NULL, 0), SHMRING_NOT_FOUND);
  CHECK_STATUS(shmring_read_stats("a/b", &stats, NULL, 0), SHMRING_INVALID_ARGUMENT);

  const char* name = name_for("listed");
  shmring_frame_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_frame_subscriber_open(name, NULL, &sub), SHMRING_OK);
  CHECK_STATUS(shmring_list_channels(NULL), SHMRING_INVALID_ARGUMENT);
  shmring_channel_list_t* list = NULL;
  CHECK_STATUS(shmring_list_channels(&list), SHMRING_OK);
  int found = 0;
  for (size_t i = 0; i < shmring_channel_list_size(list); ++i) found += strcmp(shmring_channel_list_name(list, i), name) == 0;
  CHECK(found == 1);
  CHECK(shmring_channel_list_name(list, shmring_channel_list_size(list)) == NULL);
  CHECK(shmring_channel_list_name(NULL, 0) == NULL && shmring_channel_list_size(NULL) == 0);
  shmring_channel_list_destroy(list);
  /* A peers array shorter than the endpoints: the first ones, and the count of all. */
  shmring_frame_publisher_t* pub = NULL;
  CHECK_STATUS(shmring_frame_publisher_open(name, NULL, &pub), SHMRING_OK);
  shmring_peer_stats_t one;
  CHECK_STATUS(shmring_read_stats(name, &stats, &one, 1), SHMRING_OK);
  CHECK(stats.peer_count == 2 && stats.kind == SHMRING_KIND_FRAMES && one.alive);

  CHECK_STATUS(shmring_remove_channel(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_remove_channel(name_for("nothing")), SHMRING_NOT_FOUND);
  CHECK(contains(shmring_last_error(), "shmring_remove_channel"));
  CHECK_STATUS(shmring_remove_channel(name), SHMRING_OK);
  CHECK_STATUS(shmring_read_stats(name, &stats, NULL, 0), SHMRING_NOT_FOUND);
  /* The endpoints keep working on the removed channel; the descriptor reports the removal. */
  int fd = -1;
  CHECK_STATUS(shmring_endpoint_wait_fd(shmring_frame_subscriber_endpoint(sub), &fd), SHMRING_OK);
  CHECK_STATUS(shmring_frame_publisher_send(pub, "frame", 5, 0), SHMRING_OK);
  char frame[5];
  size_t size = 0;
  static char whole[4 << 20];
  CHECK_STATUS(shmring_frame_subscriber_receive(sub, frame, sizeof frame, &size, 0), SHMRING_TOO_LARGE);
  CHECK_STATUS(shmring_frame_subscriber_receive(sub, whole, sizeof whole, &size, 0), SHMRING_OK);
  CHECK(size == 5 && shmring_frame_subscriber_received(sub) == 1 && shmring_frame_publisher_frames_published(pub) == 1);
  shmring_frame_publisher_destroy(pub);
  shmring_frame_subscriber_destroy(sub);
}

static void frames_newest_first(void) {
  const char* name = name_for("frames");
  shmring_frame_options_t options;
  shmring_frame_options_init(&options);
  options.max_message = 1024;
  shmring_frame_publisher_t* pub = NULL;
  shmring_frame_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_frame_publisher_open(name, &options, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_frame_subscriber_open(name, &options, &sub), SHMRING_OK);
  for (int i = 1; i <= 5; ++i) CHECK_STATUS(shmring_frame_publisher_send(pub, &i, sizeof i, 0), SHMRING_OK);
  shmring_view_t view;
  CHECK_STATUS(shmring_frame_subscriber_view(sub, 0, &view), SHMRING_OK);
  int value = 0;
  memcpy(&value, view.data, sizeof value);
  CHECK(value == 5 && view.sequence == 5);
  CHECK_STATUS(shmring_frame_subscriber_release(sub), SHMRING_OK);
  CHECK(shmring_frame_subscriber_lost(sub) == 0); /* counted from the first frame it took */
  CHECK_STATUS(shmring_frame_subscriber_view(sub, 0, &view), SHMRING_WOULD_BLOCK); /* nothing newer */
  for (int i = 6; i <= 8; ++i) CHECK_STATUS(shmring_frame_publisher_send(pub, &i, sizeof i, 0), SHMRING_OK);
  CHECK_STATUS(shmring_frame_subscriber_view(sub, 0, &view), SHMRING_OK);
  CHECK(view.sequence == 8 && shmring_frame_subscriber_lost(sub) == 2);
  CHECK_STATUS(shmring_frame_subscriber_release(sub), SHMRING_OK);
  CHECK_STATUS(shmring_frame_subscriber_view(sub, 2 * MS, &view), SHMRING_TIMED_OUT);
  shmring_frame_subscriber_destroy(sub);
  shmring_frame_publisher_destroy(pub);
}

static void* other_thread(void* arg) {
  (void)arg;
  /* This thread has had no failure: its message is empty, whatever the main thread's is. */
  const int empty = shmring_last_error()[0] == '\0';
  shmring_topic_publisher_send(NULL, "x", 1, 0);
  const int own = contains(shmring_last_error(), "shmring_topic_publisher_send");
  return (void*)(intptr_t)(empty && own);
}

static void status_strings_and_thread_messages(void) {
  const shmring_status_t all[] = {SHMRING_OK, SHMRING_WOULD_BLOCK, SHMRING_TIMED_OUT, SHMRING_TOO_LARGE,
                                  SHMRING_CORRUPT, SHMRING_EVICTED, SHMRING_CLOSED, SHMRING_OVERWRITTEN,
                                  SHMRING_INVALID_ARGUMENT, SHMRING_NOT_FOUND, SHMRING_ALREADY_EXISTS,
                                  SHMRING_PERMISSION_DENIED, SHMRING_FAILED_PRECONDITION,
                                  SHMRING_RESOURCE_EXHAUSTED, SHMRING_DEADLINE_EXCEEDED, SHMRING_ABORTED,
                                  SHMRING_DATA_LOSS, SHMRING_UNAVAILABLE, SHMRING_INTERNAL, SHMRING_UNKNOWN,
                                  SHMRING_OUT_OF_MEMORY};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) {
    CHECK(strcmp(shmring_status_string(all[i]), "unknown status") != 0);
    for (size_t j = 0; j < i; ++j) CHECK(strcmp(shmring_status_string(all[i]), shmring_status_string(all[j])) != 0);
  }
  CHECK(strcmp(shmring_status_string((shmring_status_t)12345), "unknown status") == 0);
  CHECK(strcmp(shmring_status_string(SHMRING_WOULD_BLOCK), "would block") == 0);
  CHECK(shmring_version()[0] >= '0' && shmring_version()[0] <= '9');
  /* A success leaves the message alone; a data-path result does not set one. */
  shmring_remove_channel(name_for("nothing"));
  const char* before = shmring_last_error();
  CHECK(contains(before, "shmring_remove_channel"));
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_queue_consumer_open(name_for("quiet"), NULL, &consumer), SHMRING_OK);
  char slot[256];
  size_t size = 0;
  CHECK_STATUS(shmring_queue_consumer_receive(consumer, slot, sizeof slot, &size, 0), SHMRING_WOULD_BLOCK);
  CHECK(contains(shmring_last_error(), "shmring_remove_channel"));
  shmring_queue_consumer_destroy(consumer);
  /* Messages are per thread. */
  pthread_t thread;
  void* result = NULL;
  CHECK(pthread_create(&thread, NULL, other_thread, NULL) == 0);
  CHECK(pthread_join(thread, &result) == 0);
  CHECK(result == (void*)1);
  CHECK(contains(shmring_last_error(), "shmring_remove_channel"));
}

static void trust_modes_and_owners(void) {
  /* A channel looser than the opener allows is refused; one as loose as it allows is fine. */
  const char* name = name_for("trust");
  shmring_topic_options_t loose;
  shmring_topic_options_init(&loose);
  loose.permissions = 0644;
  shmring_topic_publisher_t* pub = NULL;
  shmring_topic_subscriber_t* sub = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(name, &loose, &pub), SHMRING_OK);
  CHECK_STATUS(shmring_topic_subscriber_open(name, NULL, &sub), SHMRING_PERMISSION_DENIED);
  CHECK(sub == NULL && contains(shmring_last_error(), name));
  CHECK_STATUS(shmring_topic_subscriber_open(name, &loose, &sub), SHMRING_OK);
  shmring_topic_subscriber_destroy(sub);
  shmring_topic_publisher_destroy(pub);
  /* A count without a list. */
  shmring_queue_options_t options;
  shmring_queue_options_init(&options);
  options.trusted_owner_count = 2;
  shmring_queue_consumer_t* consumer = NULL;
  CHECK_STATUS(shmring_queue_consumer_open(name_for("trust"), &options, &consumer), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "trusted_owners"));
  if (getuid() != 0) return; /* the rest makes a channel as another user */
  /* A channel another user made: refused unless that user is trusted. */
  const char* theirs = name_for("theirs");
  int ready[2];
  int done[2];
  CHECK(pipe(ready) == 0 && pipe(done) == 0);
  fflush(NULL);
  const pid_t child = fork();
  if (child == 0) {
    char byte = 0;
    shmring_queue_producer_t* producer = NULL;
    shmring_queue_options_t mine;
    shmring_queue_options_init(&mine);
    mine.permissions = 0666;
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    if (shmring_queue_producer_open(theirs, &mine, &producer) != SHMRING_OK) {
      fprintf(stderr, "as nobody: %s\n", shmring_last_error());
      _exit(3);
    }
    if (write(ready[1], &byte, 1) != 1 || read(done[0], &byte, 1) != 1) _exit(4);
    shmring_queue_producer_destroy(producer);
    _exit(0);
  }
  char byte = 0;
  CHECK(read(ready[0], &byte, 1) == 1);
  shmring_queue_options_init(&options);
  options.permissions = 0666;
  CHECK_STATUS(shmring_queue_consumer_open(theirs, &options, &consumer), SHMRING_PERMISSION_DENIED);
  const uint32_t nobody = 65534;
  options.trusted_owners = &nobody;
  options.trusted_owner_count = 1;
  CHECK_STATUS(shmring_queue_consumer_open(theirs, &options, &consumer), SHMRING_OK);
  shmring_queue_consumer_destroy(consumer);
  CHECK(write(done[1], &byte, 1) == 1);
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(ready[0]);
  close(ready[1]);
  close(done[0]);
  close(done[1]);
}

static void a_forked_childs_copies_are_inert(void) {
  const char* name = name_for("fork");
  shmring_queue_producer_t* producer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(name, NULL, &producer), SHMRING_OK);
  fflush(NULL);
  const pid_t child = fork();
  if (child == 0) {
    /* The child's copy never writes the parent's claims: every call answers SHMRING_CLOSED. */
    void* buffer = NULL;
    size_t capacity = 0;
    const int ok = !shmring_endpoint_is_open(shmring_queue_producer_endpoint(producer)) &&
                   shmring_queue_producer_send(producer, "child", 5, 0) == SHMRING_CLOSED &&
                   shmring_queue_producer_loan(producer, 0, &buffer, &capacity) == SHMRING_CLOSED;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_STATUS(shmring_queue_producer_send(producer, "parent", 6, 0), SHMRING_OK);
  CHECK(shmring_queue_producer_size_approx(producer) == 1);
  shmring_queue_producer_destroy(producer);
}

int main(void) {
  null_handles_are_refused();
  foreign_and_wrong_kind_handles_are_refused();
  null_arguments_are_refused();
  wrong_sizes();
  bad_options_and_names();
  kinds_and_publishers_must_match();
  topic_options_of_version_2();
  closed_endpoints_answer_closed();
  loans_and_views_after_close();
  timeouts();
  queue_round_trips_and_redelivery();
  topic_counters_lossless_and_descriptors();
  lossy_topic_counts_what_a_slow_subscriber_lost();
  lossless_publisher_evicts_a_subscriber_that_holds_it_back();
  stats_listing_and_removal();
  frames_newest_first();
  status_strings_and_thread_messages();
  trust_modes_and_owners();
  a_forked_childs_copies_are_inert();
  printf("%d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
