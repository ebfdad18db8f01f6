// A loan or a view handed to Python (_Lease): its bytes exported through the buffer protocol, and
// the one rule that makes them safe: memory a Python object can still reach is never given back.
//
// The lease counts its buffer exports itself (bf_getbuffer / bf_releasebuffer). numpy.frombuffer,
// memoryview slices and memoryview() of it all hold one of those exports (through the memoryview's
// shared buffer) until the last of them is gone, so:
//  * a view released while exported is given back when the last export goes (a queue item is
//    consumed, a lossless publisher let go, a frame unpinned only then). A lossy topic's view is
//    checked at release() all the same (its publisher never waits, so waiting would protect
//    nothing): OverwrittenError if it was lapped so far; the mapping stays until the last export;
//  * a loan is never published while exported (BufferError, the loan stays out and can be
//    published once they are gone), and one abandoned while exported is abandoned when the last
//    export goes: its room is never reused under an array;
//  * every lease pins its endpoint's mapping (EndpointBox::pins) until it is settled and no
//    longer exported, so closing the endpoint never unmaps memory an array still points into.
// All of it runs with the GIL held; the box's mutex is taken for the C++ calls (box.h's rules).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <variant>

#include "box.h"

namespace shmring::python {

template <typename L>
constexpr bool kIsView = std::is_same_v<L, TopicView> || std::is_same_v<L, QueueView> || std::is_same_v<L, FrameView>;

struct PyLease {
  using Any = std::variant<TopicLoan, TopicView, QueueLoan, QueueView, FrameLoan, FrameView>;

  // A lease of `box`'s endpoint over `data`; the maker then sets `lease` (under the box's mutex,
  // with lease_out set and a pin added).
  PyLease(std::shared_ptr<EndpointBox> b, std::span<std::byte> data, bool is_writable)
      : box(std::move(b)), bytes(data), writable(is_writable) {}
  PyLease(const PyLease&) = delete;
  PyLease& operator=(const PyLease&) = delete;
  // Settles what is still out and unpins (in a forked child: leaks, see box.h).
  ~PyLease();

  std::shared_ptr<EndpointBox> box;  // declared first: destroyed after `lease`
  std::unique_ptr<Any> lease;        // null once settled
  std::span<std::byte> bytes;
  bool writable = false;
  bool lossy_view = false;     // a lossy topic's view: checked at release() even while exported
  std::uint64_t sequence = 0;  // topic: sequence number; queue: ticket; frames: frame number
  std::uint32_t publisher = 0;            // topic: its publisher's id (0 otherwise)
  std::uint64_t publisher_sequence = 0;   // topic: that publisher's own number (0 otherwise)
  bool redelivered = false;    // queue: taken over from a dead consumer
  int exports = 0;             // live buffer exports
  bool settle_when_unexported = false;  // release()/abandon() came while exported
  bool pinned = true;                   // holds one of box->pins

  bool settled() const { return lease == nullptr; }
  // Views: gives the message back now, or when the last export goes (see above). Returns the
  // view's answer (kOk, kOverwritten, kEvicted, kClosed, kCorrupt).
  ChannelResult release();
  // Loans: publishes the first `n` bytes. kOk, or the publisher's answer; raises BufferError while
  // exported and ValueError when settled.
  ChannelResult publish(std::size_t n);
  // Loans: gives the room up now, or when the last export goes; views: as release(), ignoring
  // the answer.
  void abandon();

  // The buffer protocol's two ends (installed on the _Lease type by bind_lease).
  static int get_buffer(PyObject* self, Py_buffer* view, int flags);
  static void release_buffer(PyObject* self, Py_buffer* view);

 private:
  // Under the box's mutex: ends the C++ lease as `how` says (kRelease / kPublish / kAbandon).
  enum class End { kRelease, kPublish, kAbandon };
  ChannelResult settle(End how, std::size_t n = 0);
  // Drops the pin once the lease is settled and nothing is exported.
  void unpin_if_unused();
};

// Registers _Lease in `m`.
void bind_lease(py::module_& m);

}  // namespace shmring::python
