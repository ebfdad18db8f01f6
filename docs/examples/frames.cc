// Video frames: written in place by the publisher, read in place by viewers, newest frame first.
#include <cstdio>
#include <cstring>

#include "shmring/transport/frame.h"

int main() {
  using namespace std::chrono_literals;
  shmring::FrameOptions options;
  options.max_message = 4 << 20;  // 4 MiB frames
  auto camera = shmring::FramePublisher::open("camera0", options);
  auto viewer = shmring::FrameSubscriber::open("camera0", options);
  if (!camera.ok() || !viewer.ok()) return 1;
  shmring::FrameLoan frame = camera->loan(100ms);  // a free buffer inside the segment
  if (!frame.ok()) return 1;
  std::memset(frame.buffer().data(), 0x80, frame.buffer().size());  // "render" into it
  camera->publish(frame, frame.buffer().size());
  shmring::FrameView newest = viewer->receive_view(100ms);  // skips to the newest complete frame
  if (newest.ok()) {
    std::printf("frame %llu, %zu bytes\n", static_cast<unsigned long long>(newest.sequence()),
                newest.data().size());
  }
  newest.release();  // until then the publisher never overwrites this buffer
  return 0;
}
