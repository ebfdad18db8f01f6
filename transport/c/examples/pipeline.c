/* The C API in one program (C11): a parent process hands work items to a child through a queue
 * (copying), the child answers on a topic (zero-copy: loan/publish, view/release), and the parent
 * waits for the answers on the topic's pollable descriptor. Exit status 0 when every answer came
 * back right.
 *
 *   shmring_c_example [ITEMS]      (default 1000)
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmring/shmring.h"

#define SECOND 1000000000LL

static int fail(const char* what, shmring_status_t status) {
  fprintf(stderr, "%s: %s (%s)\n", what, shmring_status_string(status), shmring_last_error());
  return 1;
}

/* The child: takes each item from the queue, answers item * 2 on the topic, in place. */
static int worker(const char* queue_name, const char* topic_name, long items) {
  shmring_queue_consumer_t* work = NULL;
  shmring_topic_publisher_t* answers = NULL;
  shmring_status_t s = shmring_queue_consumer_open(queue_name, NULL, &work);
  if (s != SHMRING_OK) return fail("worker: open queue", s);
  shmring_topic_options_t topic;
  shmring_topic_options_init(&topic);
  topic.lossless = true; /* the parent must see every answer */
  s = shmring_topic_publisher_open(topic_name, &topic, &answers);
  if (s != SHMRING_OK) return fail("worker: open topic", s);
  /* A queue hands out whole slots: the buffer holds max_message bytes. */
  unsigned char slot[256];
  if (shmring_endpoint_max_message(shmring_queue_consumer_endpoint(work)) > sizeof slot) {
    return fail("worker: max_message", SHMRING_TOO_LARGE);
  }
  for (long i = 0; i < items; ++i) {
    long item = 0;
    size_t size = 0;
    s = shmring_queue_consumer_receive(work, slot, sizeof slot, &size, 5 * SECOND);
    if (s != SHMRING_OK || size != sizeof item) return fail("worker: receive", s);
    memcpy(&item, slot, sizeof item);
    void* buffer = NULL;
    size_t capacity = 0;
    s = shmring_topic_publisher_loan(answers, sizeof(long), 5 * SECOND, &buffer, &capacity);
    if (s != SHMRING_OK) return fail("worker: loan", s);
    const long answer = item * 2;
    memcpy(buffer, &answer, sizeof answer); /* written in place, in shared memory */
    s = shmring_topic_publisher_publish(answers, sizeof answer);
    if (s != SHMRING_OK) return fail("worker: publish", s);
  }
  shmring_topic_publisher_destroy(answers);
  shmring_queue_consumer_destroy(work);
  return 0;
}

int main(int argc, char** argv) {
  const long items = argc > 1 ? atol(argv[1]) : 1000;
  char queue_name[64], topic_name[64];
  snprintf(queue_name, sizeof queue_name, "c_example.work.%d", (int)getpid());
  snprintf(topic_name, sizeof topic_name, "c_example.answers.%d", (int)getpid());

  shmring_queue_producer_t* work = NULL;
  shmring_topic_subscriber_t* answers = NULL;
  shmring_status_t s = shmring_queue_producer_open(queue_name, NULL, &work);
  if (s != SHMRING_OK) return fail("open queue", s);
  shmring_topic_options_t topic;
  shmring_topic_options_init(&topic);
  topic.lossless = true;
  s = shmring_topic_subscriber_open(topic_name, &topic, &answers);
  if (s != SHMRING_OK) return fail("open topic", s);

  fflush(NULL);
  const pid_t child = fork();
  if (child == 0) _exit(worker(queue_name, topic_name, items));

  int fd = -1;
  s = shmring_endpoint_wait_fd(shmring_topic_subscriber_endpoint(answers), &fd);
  if (s != SHMRING_OK) return fail("wait_fd", s);
  long sent = 0, received = 0, wrong = 0;
  int status = 0;
  int worker_done = 0;
  while (received < items) {
    /* Feed the queue while it has room, then read every answer there is. */
    while (sent < items && shmring_queue_producer_send(work, &sent, sizeof sent, 0) == SHMRING_OK) ++sent;
    shmring_view_t view;
    while ((s = shmring_topic_subscriber_view(answers, 0, &view)) == SHMRING_OK) {
      long answer = 0;
      memcpy(&answer, view.data, sizeof answer);
      if (view.size != sizeof answer || answer != received * 2) ++wrong;
      ++received;
      shmring_topic_subscriber_release(answers);
    }
    if (s != SHMRING_WOULD_BLOCK) return fail("view", s);
    if (worker_done) break; /* it exited and everything it answered has been read */
    if (waitpid(child, &status, WNOHANG) == child) {
      worker_done = 1; /* read what it left, then stop */
      continue;
    }
    /* Nothing to read: sleep until the descriptor says there may be (or 100 ms, to feed more). */
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 100);
  }
  if (!worker_done) waitpid(child, &status, 0);

  shmring_peer_stats_t mine;
  shmring_endpoint_stats(shmring_topic_subscriber_endpoint(answers), &mine);
  printf("%ld items sent, %ld answers received (%ld wrong); the subscriber's slot counted %llu\n", sent,
         received, wrong, (unsigned long long)mine.received);

  shmring_channel_list_t* list = NULL;
  if (shmring_list_channels(&list) == SHMRING_OK) {
    for (size_t i = 0; i < shmring_channel_list_size(list); ++i) {
      const char* name = shmring_channel_list_name(list, i);
      if (strcmp(name, topic_name) == 0) printf("channel %s is listed\n", name);
    }
    shmring_channel_list_destroy(list);
  }
  shmring_topic_subscriber_destroy(answers);
  shmring_queue_producer_destroy(work);
  const int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && wrong == 0 && received == items;
  printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
