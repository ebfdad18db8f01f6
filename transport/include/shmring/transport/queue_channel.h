// Renamed: the queue pattern's header is shmring/transport/queue.h. This forwarding header is kept
// for one release (0.2) and will be removed in the next.
#pragma once
#include "shmring/transport/queue.h"
