// Creates a segment through the installed package and checks a second attachment sees the bytes.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "shmring/core/shared_memory.h"

int main() {
  const std::string key = "t_install_consumer_" + std::to_string(getpid());
  shmring::SharedMemory writer(key), reader(key);
  if (!writer.create(64)) {
    std::fprintf(stderr, "%s\n", writer.error_string().c_str());
    return 1;
  }
  std::strcpy(static_cast<char*>(writer.data()), "installed");
  if (!reader.attach(shmring::AccessMode::kReadOnly)) return 2;
  std::printf("consumer read: %s\n", static_cast<const char*>(reader.const_data()));
  return std::strcmp(static_cast<const char*>(reader.const_data()), "installed") == 0 ? 0 : 3;
}
