// Renamed: the frames pattern's header is shmring/transport/frame.h. This forwarding header is kept
// for one release (0.2) and will be removed in the next.
#pragma once
#include "shmring/transport/frame.h"
