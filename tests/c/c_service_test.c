/* Services through the C API (shmring/shmring.h, version 3), from C11: every call's unhappy paths
 * (NULL and wrong-kind handles, NULL out-parameters, bad options, closed endpoints, request
 * handles outliving their endpoint), then round trips copying and zero-copy, streams, back-
 * pressure, cancellation by the client, a request the server drops, a deadline, a forked child's
 * inert copies, and servers
 * killed (SIGKILL) while they hold a request: redelivered to another server, or SHMRING_PEER_GONE
 * when the client asked for at-most-once. Runs under ASan/UBSan in the sanitizer builds. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shmring/shmring.h"

#define MS 1000000LL

static void null_and_wrong_handles_are_refused(void) {
  shmring_pending_response_t* pending = NULL;
  shmring_active_request_t* request = NULL;
  void* buffer = NULL;
  size_t capacity = 0, size = 0;
  const void* data = NULL;
  bool final = true;
  shmring_view_t view;
  CHECK_STATUS(shmring_service_client_send_request(NULL, "x", 1, 0, &pending), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "shmring_service_client_send_request") && pending == NULL);
  CHECK_STATUS(shmring_service_client_loan_request(NULL, 0, &buffer, &capacity), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_send_loaned_request(NULL, 1, &pending), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_abandon_request(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_call(NULL, "x", 1, buffer, 0, &size, MS), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_set_request_timeout(NULL, MS), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_service_client_max_request(NULL) == 0 && shmring_service_client_max_response(NULL) == 0);
  CHECK(shmring_service_client_in_flight(NULL) == 0 && shmring_service_client_servers_approx(NULL) == 0);
  CHECK_STATUS(shmring_pending_response_receive(NULL, NULL, 0, &size, &final, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_pending_response_view(NULL, 0, &view), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_pending_response_release(NULL), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_pending_response_wait(NULL, MS), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_pending_response_id(NULL) == 0 && !shmring_pending_response_done(NULL));
  CHECK(!shmring_pending_response_expired(NULL) && !shmring_pending_response_redelivered(NULL));
  CHECK_STATUS(shmring_service_server_receive_request(NULL, 0, &request), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_server_receive_request_into(NULL, NULL, 0, &size, 0, &request), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_service_server_max_request(NULL) == 0 && shmring_service_server_max_active(NULL) == 0);
  CHECK(shmring_service_server_active(NULL) == 0 && shmring_service_server_max_response(NULL) == 0);
  CHECK_STATUS(shmring_active_request_data(NULL, &data, &size), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_active_request_id(NULL) == 0 && !shmring_active_request_expired(NULL));
  CHECK(!shmring_active_request_redelivered(NULL) && !shmring_active_request_cancelled(NULL));
  CHECK(!shmring_active_request_finished(NULL));
  CHECK_STATUS(shmring_active_request_respond(NULL, "x", 1, true, false), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_active_request_loan_response(NULL, false, &buffer, &capacity), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_active_request_respond_loaned(NULL, 1, true), SHMRING_INVALID_ARGUMENT);
  CHECK(shmring_service_client_endpoint(NULL) == NULL && shmring_service_server_endpoint(NULL) == NULL);
  shmring_service_client_destroy(NULL);
  shmring_service_server_destroy(NULL);
  shmring_pending_response_destroy(NULL);
  shmring_active_request_destroy(NULL);

  /* A handle of another kind is refused, not misread. */
  shmring_topic_publisher_t* topic = NULL;
  CHECK_STATUS(shmring_topic_publisher_open(name_for("svc_kind"), NULL, &topic), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_send_request((shmring_service_client_t*)topic, "x", 1, 0, &pending),
               SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_pending_response_wait((shmring_pending_response_t*)topic, MS), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_server_receive_request((shmring_service_server_t*)topic, 0, &request),
               SHMRING_INVALID_ARGUMENT);
  shmring_topic_publisher_destroy(topic);
}

static void options_and_names(void) {
  shmring_service_options_t options;
  shmring_service_client_t* client = NULL;
  shmring_service_options_init(&options);
  CHECK(options.struct_size == sizeof options && options.create && options.permissions == 0600);
  CHECK(options.request_timeout_ns == 10000 * MS && !options.at_most_once && options.group == -1);
  options.struct_size = 0;
  CHECK_STATUS(shmring_service_client_open(name_for("svc_opt"), &options, &client), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "struct_size") && client == NULL);
  shmring_service_options_init(&options);
  options.request_timeout_ns = 0;
  CHECK_STATUS(shmring_service_client_open(name_for("svc_opt"), &options, &client), SHMRING_INVALID_ARGUMENT);
  CHECK(contains(shmring_last_error(), "request_timeout_ns"));
  shmring_service_options_init(&options);
  options.wait_strategy = 9;
  CHECK_STATUS(shmring_service_client_open(name_for("svc_opt"), &options, &client), SHMRING_INVALID_ARGUMENT);
  shmring_service_options_init(&options);
  options.response_depth = 3; /* not a power of two */
  CHECK_STATUS(shmring_service_client_open(name_for("svc_opt"), &options, &client), SHMRING_INVALID_ARGUMENT);
  shmring_service_options_init(&options);
  options.create = false;
  CHECK_STATUS(shmring_service_client_open(name_for("svc_missing"), &options, &client), SHMRING_NOT_FOUND);
  CHECK_STATUS(shmring_service_client_open("a/b", NULL, &client), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_open(NULL, NULL, &client), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_open(name_for("svc_opt"), NULL, NULL), SHMRING_INVALID_ARGUMENT);
  /* Another kind under the name; limits that disagree with the creator's. */
  const char* name = name_for("svc_kind2");
  shmring_queue_producer_t* producer = NULL;
  CHECK_STATUS(shmring_queue_producer_open(name, NULL, &producer), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_open(name, NULL, &client), SHMRING_FAILED_PRECONDITION);
  shmring_queue_producer_destroy(producer);
  name = name_for("svc_limits");
  shmring_service_server_t* server = NULL;
  shmring_service_options_init(&options);
  options.max_request = 64;
  CHECK_STATUS(shmring_service_server_open(name, &options, &server), SHMRING_OK);
  options.max_request = 128;
  CHECK_STATUS(shmring_service_client_open(name, &options, &client), SHMRING_FAILED_PRECONDITION);
  CHECK(client == NULL);
  shmring_service_server_destroy(server);
}

/* Client and server in one process: a stream answered copying and in place, ids matching. */
static void round_trips_streams_and_zero_copy(void) {
  const char* name = name_for("svc_rt");
  shmring_service_options_t options;
  shmring_service_options_init(&options);
  options.max_request = 64;
  options.max_response = 32;
  shmring_service_server_t* server = NULL;
  shmring_service_client_t* client = NULL;
  CHECK_STATUS(shmring_service_server_open(name, &options, &server), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_open(name, NULL, &client), SHMRING_OK);
  CHECK(shmring_service_client_max_request(client) == 64 && shmring_service_client_max_response(client) == 32);
  CHECK(shmring_endpoint_max_message(shmring_service_client_endpoint(client)) == 64);
  CHECK(shmring_service_client_servers_approx(client) == 1);

  shmring_pending_response_t* pending = NULL;
  char too_big[65] = {0};
  CHECK_STATUS(shmring_service_client_send_request(client, too_big, sizeof too_big, 0, &pending), SHMRING_TOO_LARGE);
  CHECK(pending == NULL);
  CHECK_STATUS(shmring_service_client_send_request(client, "ping", 5, 0, &pending), SHMRING_OK);
  CHECK(pending != NULL && shmring_service_client_in_flight(client) == 1);
  CHECK_STATUS(shmring_pending_response_wait(pending, 0), SHMRING_TIMED_OUT); /* nobody took it yet */
  char got[64];
  size_t size = 0;
  bool final = true;
  CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, &final, 0), SHMRING_WOULD_BLOCK);

  shmring_active_request_t* request = NULL;
  char small[2];
  CHECK_STATUS(shmring_service_server_receive_request_into(server, small, sizeof small, &size, 0, &request),
               SHMRING_TOO_LARGE); /* a buffer below max_request: nothing taken */
  CHECK(request == NULL);
  CHECK_STATUS(shmring_service_server_receive_request_into(server, got, sizeof got, &size, 100 * MS, &request),
               SHMRING_OK);
  CHECK(size == 5 && strcmp(got, "ping") == 0);
  const void* data = NULL;
  CHECK_STATUS(shmring_active_request_data(request, &data, &size), SHMRING_OK);
  CHECK(size == 5 && memcmp(data, "ping", 5) == 0);
  CHECK(shmring_pending_response_id(pending) != 0);
  CHECK(shmring_active_request_id(request) == shmring_pending_response_id(pending));
  CHECK(!shmring_active_request_redelivered(request) && !shmring_active_request_cancelled(request));
  CHECK(!shmring_active_request_expired(request) && shmring_service_server_active(server) == 1);
  char big_response[33] = {0};
  CHECK_STATUS(shmring_active_request_respond(request, big_response, sizeof big_response, true, false), SHMRING_TOO_LARGE);
  CHECK_STATUS(shmring_active_request_respond(request, "one", 4, false, false), SHMRING_OK);
  /* The final response written in place; a too-large size keeps the loan. */
  void* buffer = NULL;
  size_t capacity = 0;
  CHECK_STATUS(shmring_active_request_loan_response(request, false, &buffer, &capacity), SHMRING_OK);
  CHECK(capacity == 32);
  void* second = NULL;
  CHECK_STATUS(shmring_active_request_loan_response(request, false, &second, &capacity), SHMRING_WOULD_BLOCK);
  CHECK(second == NULL);
  memcpy(buffer, "two", 4);
  CHECK_STATUS(shmring_active_request_respond_loaned(request, 33, true), SHMRING_TOO_LARGE);
  CHECK_STATUS(shmring_active_request_respond_loaned(request, 4, true), SHMRING_OK);
  CHECK(shmring_active_request_finished(request) && shmring_service_server_active(server) == 0);
  CHECK_STATUS(shmring_active_request_respond(request, "late", 5, true, false), SHMRING_CLOSED);
  CHECK_STATUS(shmring_active_request_data(request, &data, &size), SHMRING_CLOSED);
  shmring_active_request_destroy(request);

  CHECK_STATUS(shmring_pending_response_wait(pending, 100 * MS), SHMRING_OK);
  CHECK_STATUS(shmring_pending_response_receive(pending, got, 2, &size, &final, 0), SHMRING_TOO_LARGE);
  CHECK(size == 4); /* how long it is; nothing taken */
  CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, &final, 0), SHMRING_OK);
  CHECK(size == 4 && strcmp(got, "one") == 0 && !final && !shmring_pending_response_done(pending));
  shmring_view_t view;
  CHECK_STATUS(shmring_pending_response_view(pending, 100 * MS, &view), SHMRING_OK);
  CHECK(view.size == 4 && strcmp(view.data, "two") == 0);
  CHECK((view.flags & SHMRING_VIEW_FINAL) && !(view.flags & SHMRING_VIEW_REDELIVERED));
  CHECK(view.sequence == shmring_pending_response_id(pending));
  CHECK_STATUS(shmring_pending_response_view(pending, 0, &view), SHMRING_WOULD_BLOCK); /* one at a time */
  CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, &final, 0), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_pending_response_release(pending), SHMRING_OK);
  CHECK_STATUS(shmring_pending_response_release(pending), SHMRING_OK); /* none out: nothing to do */
  CHECK(shmring_pending_response_done(pending) && !shmring_pending_response_expired(pending));
  CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, &final, 0), SHMRING_CLOSED);
  shmring_pending_response_destroy(pending);
  CHECK(shmring_service_client_in_flight(client) == 0);

  /* Zero-copy request: loan, fill, send; a too-large send keeps the loan; abandon gives it back. */
  CHECK_STATUS(shmring_service_client_loan_request(client, 0, &buffer, &capacity), SHMRING_OK);
  CHECK(capacity == 64 && shmring_service_client_in_flight(client) == 1);
  CHECK_STATUS(shmring_service_client_loan_request(client, 0, &second, &capacity), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_service_client_abandon_request(client), SHMRING_OK);
  CHECK(shmring_service_client_in_flight(client) == 0);
  CHECK_STATUS(shmring_service_client_loan_request(client, 100 * MS, &buffer, &capacity), SHMRING_OK);
  memcpy(buffer, "in place", 9);
  CHECK_STATUS(shmring_service_client_send_loaned_request(client, 65, &pending), SHMRING_TOO_LARGE);
  CHECK(pending == NULL);
  CHECK_STATUS(shmring_service_client_send_loaned_request(client, 9, &pending), SHMRING_OK);
  shmring_pending_response_t* none = NULL;
  CHECK_STATUS(shmring_service_client_send_loaned_request(client, 9, &none), SHMRING_CLOSED); /* no loan out */
  CHECK(none == NULL);
  CHECK_STATUS(shmring_service_server_receive_request(server, 100 * MS, &request), SHMRING_OK);
  CHECK_STATUS(shmring_active_request_data(request, &data, &size), SHMRING_OK);
  CHECK(size == 9 && strcmp(data, "in place") == 0);
  CHECK_STATUS(shmring_active_request_loan_response(request, true, &buffer, &capacity), SHMRING_OK);
  memcpy(buffer, "done", 5);
  CHECK_STATUS(shmring_active_request_respond_loaned(request, 5, true), SHMRING_OK);
  shmring_active_request_destroy(request);
  CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, &final, 100 * MS), SHMRING_OK);
  CHECK(size == 5 && strcmp(got, "done") == 0 && final);
  shmring_pending_response_destroy(pending);

  /* Counters from outside. */
  shmring_service_stats_t stats;
  stats.struct_size = 8;
  CHECK_STATUS(shmring_read_service_stats(name, &stats), SHMRING_INVALID_ARGUMENT);
  stats.struct_size = sizeof stats;
  CHECK_STATUS(shmring_read_service_stats(name, &stats), SHMRING_OK);
  CHECK(stats.requests == 2 && stats.served == 2 && stats.servers == 1 && stats.clients == 1);
  CHECK(stats.max_request == 64 && stats.max_response == 32 && stats.in_flight == 0);
  CHECK_STATUS(shmring_read_service_stats(name_for("svc_none"), &stats), SHMRING_NOT_FOUND);
  CHECK_STATUS(shmring_read_service_stats(name, NULL), SHMRING_INVALID_ARGUMENT);
  shmring_channel_stats_t channel;
  channel.struct_size = sizeof channel;
  CHECK_STATUS(shmring_read_stats(name, &channel, NULL, 0), SHMRING_OK);
  CHECK(channel.kind == SHMRING_KIND_SERVICE);
  shmring_service_client_destroy(client);
  shmring_service_server_destroy(server);
}

/* Back-pressure, cancellation, a dropped request, a deadline, and closes under outstanding
 * handles. */
static void back_pressure_cancel_drop_deadline_close(void) {
  const char* name = name_for("svc_bp");
  shmring_service_options_t options;
  shmring_service_options_init(&options);
  options.max_in_flight = 2;
  shmring_service_server_t* server = NULL;
  shmring_service_client_t* client = NULL;
  CHECK_STATUS(shmring_service_server_open(name, &options, &server), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_open(name, NULL, &client), SHMRING_OK);
  shmring_pending_response_t* a = NULL;
  shmring_pending_response_t* b = NULL;
  shmring_pending_response_t* c = NULL;
  CHECK_STATUS(shmring_service_client_send_request(client, "a", 2, 0, &a), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_send_request(client, "b", 2, 0, &b), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_send_request(client, "c", 2, 0, &c), SHMRING_WOULD_BLOCK);
  CHECK_STATUS(shmring_service_client_send_request(client, "c", 2, 20 * MS, &c), SHMRING_TIMED_OUT);
  CHECK(c == NULL);

  /* The client cancels `a` (destroys it) after the server took it: the server sees cancelled,
   * a stream response answers SHMRING_CANCELLED; the call comes back once the server lets go. */
  shmring_active_request_t* ra = NULL;
  shmring_active_request_t* rb = NULL;
  CHECK_STATUS(shmring_service_server_receive_request(server, 100 * MS, &ra), SHMRING_OK);
  CHECK_STATUS(shmring_service_server_receive_request(server, 100 * MS, &rb), SHMRING_OK);
  shmring_pending_response_destroy(a);
  CHECK(shmring_active_request_cancelled(ra));
  CHECK_STATUS(shmring_active_request_respond(ra, "x", 2, false, false), SHMRING_CANCELLED);
  CHECK(shmring_service_client_in_flight(client) == 2); /* taken until the server lets go */
  shmring_active_request_destroy(ra);
  CHECK(shmring_service_client_in_flight(client) == 1);
  /* The server drops `b` unanswered: the client hears SHMRING_PEER_GONE. */
  shmring_active_request_destroy(rb);
  char got[64];
  size_t size = 0;
  CHECK_STATUS(shmring_pending_response_receive(b, got, sizeof got, &size, NULL, 100 * MS), SHMRING_PEER_GONE);
  CHECK(shmring_pending_response_done(b));
  shmring_pending_response_destroy(b);

  /* A deadline nobody meets: SHMRING_TIMED_OUT, expired. */
  CHECK_STATUS(shmring_service_client_set_request_timeout(client, 0), SHMRING_INVALID_ARGUMENT);
  CHECK_STATUS(shmring_service_client_set_request_timeout(client, 30 * MS), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_send_request(client, "slow", 5, 0, &c), SHMRING_OK);
  CHECK_STATUS(shmring_pending_response_receive(c, got, sizeof got, &size, NULL, 5000 * MS), SHMRING_TIMED_OUT);
  CHECK(shmring_pending_response_done(c) && shmring_pending_response_expired(c));
  shmring_active_request_t* late = NULL;
  if (shmring_service_server_receive_request(server, 0, &late) == SHMRING_OK) {
    CHECK(shmring_active_request_expired(late)); /* the server can tell and skip it */
    shmring_active_request_destroy(late);
  }
  shmring_pending_response_destroy(c);
  CHECK_STATUS(shmring_service_client_call(client, "x", 2, got, sizeof got, &size, 0), SHMRING_INVALID_ARGUMENT);

  /* Closing the endpoints under outstanding handles: the handles answer SHMRING_CLOSED and are
   * still destroyed safely afterwards (ASan watches). */
  CHECK_STATUS(shmring_service_client_set_request_timeout(client, 5000 * MS), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_send_request(client, "orphan", 7, 0, &c), SHMRING_OK);
  CHECK_STATUS(shmring_service_server_receive_request(server, 100 * MS, &late), SHMRING_OK);
  shmring_service_client_destroy(client);
  CHECK_STATUS(shmring_pending_response_receive(c, got, sizeof got, &size, NULL, 10 * MS), SHMRING_CLOSED);
  CHECK(shmring_active_request_cancelled(late)); /* its client is gone */
  shmring_service_server_destroy(server);
  const void* data = NULL;
  CHECK_STATUS(shmring_active_request_data(late, &data, &size), SHMRING_CLOSED);
  CHECK_STATUS(shmring_active_request_respond(late, "x", 2, true, false), SHMRING_CLOSED);
  /* Request handles are not endpoints. */
  CHECK_STATUS(shmring_endpoint_close((shmring_endpoint_t*)c), SHMRING_INVALID_ARGUMENT);
  CHECK(!shmring_endpoint_is_open((shmring_endpoint_t*)late));
  shmring_active_request_destroy(late);
  shmring_pending_response_destroy(c);
}

/* A forked child's copies of the parent's service handles are inert: its calls answer
 * SHMRING_CLOSED, and destroying them neither cancels the parent's request nor drops its held one. */
static void a_forked_childs_copies_are_inert(void) {
  const char* name = name_for("svc_fork");
  shmring_service_server_t* server = NULL;
  shmring_service_client_t* client = NULL;
  CHECK_STATUS(shmring_service_server_open(name, NULL, &server), SHMRING_OK);
  CHECK_STATUS(shmring_service_client_open(name, NULL, &client), SHMRING_OK);
  shmring_pending_response_t* pending = NULL;
  shmring_active_request_t* request = NULL;
  CHECK_STATUS(shmring_service_client_send_request(client, "q", 2, 0, &pending), SHMRING_OK);
  CHECK_STATUS(shmring_service_server_receive_request(server, 100 * MS, &request), SHMRING_OK);
  fflush(NULL);
  const pid_t child = fork();
  if (child == 0) {
    char got[16];
    size_t size = 0;
    int bad = 0;
    bad += shmring_pending_response_receive(pending, got, sizeof got, &size, NULL, 0) != SHMRING_CLOSED;
    bad += shmring_active_request_respond(request, "child", 6, true, false) != SHMRING_CLOSED;
    shmring_pending_response_t* mine = NULL;
    bad += shmring_service_client_send_request(client, "c", 2, 0, &mine) != SHMRING_CLOSED;
    bad += shmring_endpoint_is_open(shmring_service_client_endpoint(client));
    shmring_pending_response_destroy(pending);
    shmring_active_request_destroy(request);
    shmring_service_client_destroy(client);
    shmring_service_server_destroy(server);
    _exit(bad);
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(!shmring_active_request_cancelled(request));
  CHECK_STATUS(shmring_active_request_respond(request, "parent", 7, true, false), SHMRING_OK);
  char got[16];
  size_t size = 0;
  bool final = false;
  CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, &final, 100 * MS), SHMRING_OK);
  CHECK(size == 7 && strcmp(got, "parent") == 0 && final);
  shmring_active_request_destroy(request);
  shmring_pending_response_destroy(pending);
  shmring_service_client_destroy(client);
  shmring_service_server_destroy(server);
}

/* A server process answering with the request upper-cased (until it is killed). */
static pid_t start_upper_server(const char* name) {
  fflush(NULL);
  const pid_t child = fork();
  if (child != 0) return child;
  shmring_service_server_t* server = NULL;
  if (shmring_service_server_open(name, NULL, &server) != SHMRING_OK) _exit(2);
  for (;;) {
    shmring_active_request_t* request = NULL;
    if (shmring_service_server_receive_request(server, 1000 * MS, &request) != SHMRING_OK) continue;
    const void* data = NULL;
    size_t size = 0;
    char answer[256];
    if (shmring_active_request_data(request, &data, &size) == SHMRING_OK && size <= sizeof answer) {
      for (size_t i = 0; i < size; ++i) {
        const char ch = ((const char*)data)[i];
        answer[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
      }
      shmring_active_request_respond(request, answer, size, true, true);
    }
    shmring_active_request_destroy(request);
  }
}

static void calls_across_processes(void) {
  const char* name = name_for("svc_call");
  shmring_service_client_t* client = NULL;
  CHECK_STATUS(shmring_service_client_open(name, NULL, &client), SHMRING_OK);
  const pid_t server = start_upper_server(name);
  char got[64];
  size_t size = 0;
  int right = 0;
  for (int i = 0; i < 200; ++i) {
    char text[32];
    snprintf(text, sizeof text, "call %d", i);
    if (shmring_service_client_call(client, text, strlen(text) + 1, got, sizeof got, &size, 10000 * MS) == SHMRING_OK) {
      snprintf(text, sizeof text, "CALL %d", i);
      right += size == strlen(text) + 1 && strcmp(got, text) == 0;
    }
  }
  CHECK(right == 200);
  CHECK_STATUS(shmring_service_client_call(client, "x", 2, got, 0, &size, 1000 * MS), SHMRING_TOO_LARGE);
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);
  shmring_service_client_destroy(client);
}

/* A server killed while it holds a request: the request goes to another server (redelivered), or
 * with at_most_once ends SHMRING_PEER_GONE. Repeated: the kill lands at different moments. */
static void killed_servers(bool at_most_once, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    const char* name = name_for(at_most_once ? "svc_amo" : "svc_alo");
    shmring_service_options_t options;
    shmring_service_options_init(&options);
    options.at_most_once = at_most_once;
    shmring_service_client_t* client = NULL;
    CHECK_STATUS(shmring_service_client_open(name, &options, &client), SHMRING_OK);
    shmring_pending_response_t* pending = NULL;
    CHECK_STATUS(shmring_service_client_send_request(client, "precious", 9, 0, &pending), SHMRING_OK);
    int ready[2];
    CHECK(pipe(ready) == 0);
    fflush(NULL);
    const pid_t doomed = fork();
    if (doomed == 0) {
      shmring_service_server_t* server = NULL;
      shmring_active_request_t* held = NULL;
      if (shmring_service_server_open(name, NULL, &server) != SHMRING_OK) _exit(2);
      if (shmring_service_server_receive_request(server, 5000 * MS, &held) != SHMRING_OK) _exit(3);
      if (write(ready[1], "h", 1) != 1) _exit(4);
      pause();
      _exit(5);
    }
    char byte = 0;
    CHECK(read(ready[0], &byte, 1) == 1);
    close(ready[0]);
    close(ready[1]);
    kill(doomed, SIGKILL);
    int status = 0;
    waitpid(doomed, &status, 0);
    CHECK(WIFSIGNALED(status));
    shmring_service_server_t* rescuer = NULL;
    CHECK_STATUS(shmring_service_server_open(name, NULL, &rescuer), SHMRING_OK);
    char got[64];
    size_t size = 0;
    if (at_most_once) {
      /* The client's own slow path finds the server dead and ends the call. */
      CHECK_STATUS(shmring_pending_response_receive(pending, got, sizeof got, &size, NULL, 10000 * MS), SHMRING_PEER_GONE);
    } else {
      shmring_active_request_t* request = NULL;
      CHECK_STATUS(shmring_service_server_receive_request(rescuer, 10000 * MS, &request), SHMRING_OK);
      CHECK(request != NULL && shmring_active_request_redelivered(request));
      const void* data = NULL;
      CHECK_STATUS(shmring_active_request_data(request, &data, &size), SHMRING_OK);
      CHECK(size == 9 && memcmp(data, "precious", 9) == 0);
      CHECK_STATUS(shmring_active_request_respond(request, "safe", 5, true, true), SHMRING_OK);
      shmring_active_request_destroy(request);
      shmring_view_t view;
      CHECK_STATUS(shmring_pending_response_view(pending, 10000 * MS, &view), SHMRING_OK);
      CHECK(view.size == 5 && strcmp(view.data, "safe") == 0);
      CHECK((view.flags & SHMRING_VIEW_FINAL) && (view.flags & SHMRING_VIEW_REDELIVERED));
      CHECK_STATUS(shmring_pending_response_release(pending), SHMRING_OK);
      CHECK(shmring_pending_response_redelivered(pending));
    }
    shmring_pending_response_destroy(pending);
    shmring_service_server_destroy(rescuer);
    shmring_service_client_destroy(client);
  }
}

int main(void) {
  null_and_wrong_handles_are_refused();
  options_and_names();
  round_trips_streams_and_zero_copy();
  back_pressure_cancel_drop_deadline_close();
  calls_across_processes();
  a_forked_childs_copies_are_inert();
  killed_servers(false, 20);
  killed_servers(true, 20);
  printf("%d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
