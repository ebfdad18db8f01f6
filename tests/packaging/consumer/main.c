/* The C API from an installed package: a queue round trip, copying and zero-copy. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmring/shmring.h>

int main(void) {
  char name[64];
  snprintf(name, sizeof name, "pkg.c.%d", (int)getpid());
  shmring_queue_producer_t* producer = NULL;
  shmring_queue_consumer_t* consumer = NULL;
  if (shmring_queue_producer_open(name, NULL, &producer) != SHMRING_OK ||
      shmring_queue_consumer_open(name, NULL, &consumer) != SHMRING_OK) {
    fprintf(stderr, "open: %s\n", shmring_last_error());
    return 1;
  }
  if (shmring_queue_producer_send(producer, "from C", 7, 0) != SHMRING_OK) return 2;
  shmring_view_t view;
  if (shmring_queue_consumer_view(consumer, 1000000000LL, &view) != SHMRING_OK) return 3;
  const int ok = view.size == 7 && strcmp(view.data, "from C") == 0;
  shmring_queue_consumer_release(consumer);
  printf("C consumer (shmring %s): %s\n", shmring_version(), ok ? "ok" : "WRONG");
  shmring_queue_consumer_destroy(consumer);
  shmring_queue_producer_destroy(producer);
  return ok ? 0 : 4;
}
