// The patterns the bridge carries: one line each (link.h says what a new pattern brings).
#include "link.h"

namespace shmring::bridge {
namespace {

const Pattern* const* registered() {
  static const Pattern* const patterns[] = {
      &topic_pattern(),
      &queue_pattern(),
      &frame_pattern(),
      nullptr,
  };
  return patterns;
}

}  // namespace

const Pattern* pattern_for(ChannelKind kind) {
  for (const Pattern* const* p = registered(); *p != nullptr; ++p) {
    if ((*p)->kind == kind) return *p;
  }
  return nullptr;
}

const Pattern* pattern_for_data(wire::Type data) {
  for (const Pattern* const* p = registered(); *p != nullptr; ++p) {
    if ((*p)->data == data) return *p;
  }
  return nullptr;
}

}  // namespace shmring::bridge
