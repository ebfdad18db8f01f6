// The segment layer on its own: QSharedMemory's two-process example.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "shmring/core/shared_memory.h"

int main(int argc, char** argv) {
  shmring::SharedMemory shm("greeting");
  if (argc > 1 && std::string_view(argv[1]) == "write") {
    if (!shm.create(4096)) return std::puts(shm.error_string().c_str()), 1;
    shm.lock();  // a system semaphore; released by the kernel if this process dies
    std::strcpy(static_cast<char*>(shm.data()), "hello from another process");
    shm.unlock();
    std::getchar();  // keep it alive; the last detach (or exit) removes it
    return 0;
  }
  if (!shm.attach(shmring::AccessMode::kReadOnly)) {
    return std::printf("%s\n", shm.error_string().c_str()), 1;  // e.g. kNotFound
  }
  std::printf("%s (%d attached)\n", static_cast<const char*>(shm.const_data()), shm.num_attachments());
  return 0;
}
