// The channel endpoint classes of _shmring: TopicPublisher/TopicSubscriber,
// QueueProducer/QueueConsumer, FramePublisher/FrameSubscriber, their options and WaitStrategy.
// The calls themselves are calls.h's templates; shmring/__init__.py subclasses these classes with
// the Pythonic parts (loan()/view() wrappers, iteration, asyncio).
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <pybind11/stl.h>

#include <cmath>
#include <deque>
#include <vector>

#include "calls.h"
#include "stats.h"

namespace shmring::python {

namespace {

// --- options ------------------------------------------------------------------------------------

// Whether this process may run on more than one CPU now.
bool several_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) > 1;
}

std::chrono::milliseconds millis(double seconds, const char* what) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) {
    throw py::value_error(std::string(what) + " must be a number of seconds >= 0");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

// A numeric id (uid, gid) given as an int or as a name that `lookup(name, &entry, buffer, size,
// &found)` (getpwnam_r, getgrnam_r) resolves; `what` names it in errors ("user", "group").
template <typename Id, typename Entry, typename Lookup, typename IdOf>
Id id_of(const py::handle& given, const char* what, Lookup lookup, IdOf id_of_entry) {
  if (py::isinstance<py::str>(given)) {
    const std::string name = given.cast<std::string>();
    std::vector<char> buffer(16384);
    Entry entry{};
    Entry* found = nullptr;
    if (lookup(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr) {
      throw py::value_error(std::string("no ") + what + " named '" + name + "'");
    }
    return id_of_entry(*found);
  }
  if (!py::isinstance<py::int_>(given)) {
    throw py::type_error(std::string("a ") + what + " is an id (int) or a name (str)");
  }
  const long long id = given.cast<long long>();
  if (id < 0 || id >= static_cast<long long>(static_cast<Id>(-1))) throw py::value_error(std::string("not a valid ") + what + " id");
  return static_cast<Id>(id);
}

// None (the creator's group), a gid, or a group name.
gid_t group_id(const py::object& group) {
  if (group.is_none()) return static_cast<gid_t>(-1);
  return id_of<gid_t, struct group>(group, "group", getgrnam_r, [](const struct group& g) { return g.gr_gid; });
}

// A uid, or a user name.
uid_t user_id(const py::handle& user) {
  return id_of<uid_t, struct passwd>(user, "user", getpwnam_r, [](const struct passwd& p) { return p.pw_uid; });
}

std::vector<uid_t> user_ids(const py::object& users) {
  std::vector<uid_t> ids;
  if (py::isinstance<py::str>(users)) throw py::type_error("trusted_owners must be a sequence of uids or user names");
  for (const py::handle user : py::iter(users)) ids.push_back(user_id(user));
  return ids;
}

// The options every pattern shares, as keyword arguments (in this order after the name).
struct CommonArgs {
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint32_t max_peers = 0;
  int permissions = 0600;
  py::object group = py::none();
  py::object trusted_owners = py::tuple();
  bool create = true;
  double open_timeout = 2.0;
  py::object wait_strategy = py::none();  // None: Python's default wait (see yield_phase)
  std::uint32_t spin_iterations = WaitOptions{}.spin_iterations;

  template <typename Options>
  void apply(Options& o) const {
    o.capacity = capacity;
    o.max_message = max_message;
    o.max_peers = max_peers;
    if (permissions < 0 || permissions > 0777) throw py::value_error("permissions must be within 0o000..0o777");
    o.permissions = static_cast<mode_t>(permissions);
    o.group = group_id(group);
    o.trusted_owners = user_ids(trusted_owners);
    o.create = create;
    o.open_timeout = millis(open_timeout, "open_timeout");
    o.wait.spin_iterations = spin_iterations;
    if (wait_strategy.is_none()) {
      o.wait.strategy = yield_phase() ? WaitStrategy::kPark : WaitOptions{}.strategy;
      return;
    }
    try {
      o.wait.strategy = wait_strategy.cast<WaitStrategy>();
    } catch (const py::cast_error&) {
      throw py::type_error("wait_strategy must be None or a shmring.WaitStrategy");
    }
  }
  // Python's default wait (wait_strategy None), chosen when the endpoint opens: with more than
  // one CPU to run on, C++'s default (HYBRID: spin, then sleep); on one CPU, where a spinning
  // waiter takes the time its peer needs, the yield phase (calls.h, timed_call), then sleep
  // (PARK). Any WaitStrategy given is C++'s, exactly.
  bool yield_phase() const { return wait_strategy.is_none() && !several_cpus(); }
};

// The keyword arguments of CommonArgs with their defaults (shown in help() as Python writes them).
std::vector<py::arg_v> common_args() {
  const CommonArgs d;
  return {py::arg_v("capacity", d.capacity), py::arg_v("max_message", d.max_message),
          py::arg_v("max_peers", d.max_peers), py::arg_v("permissions", d.permissions, "0o600"),
          py::arg_v("group", py::none(), "None"), py::arg_v("trusted_owners", py::tuple(), "()"),
          py::arg_v("create", d.create),
          py::arg_v("open_timeout", d.open_timeout),
          py::arg_v("wait_strategy", py::none(), "None"),
          py::arg_v("spin_iterations", d.spin_iterations)};
}

const char* const kCommonOptionsDoc =
    "max_message: the largest message in bytes. max_peers: endpoints at once. These three are "
    "the creator's; an opener that gives a non-zero value different from the channel's gets "
    "MismatchError. permissions (e.g. 0o660) and group (None: the creator's; a gid or a group "
    "name) apply to a channel this call creates; a channel it opens must be owned by this user "
    "or one of trusted_owners (uids or user names) and grant no more than permissions "
    "(PermissionError otherwise). create=False only opens an existing channel "
    "(FileNotFoundError otherwise). open_timeout: seconds to wait for the channel's lock and for "
    "its creator. wait_strategy: how a blocking call waits once it cannot go on. None (the "
    "default) chooses when the endpoint opens: with several CPUs to run on, HYBRID (spin "
    "spin_iterations times, then sleep); on one CPU, yield the CPU between tries for up to "
    "50 us, then sleep, so that it never loses to a pipe there. A WaitStrategy is C++'s "
    "(HYBRID, BUSY_SPIN, YIELD, PARK).";

// Opens the endpoint with the GIL released (opening may wait for the channel's lock).
template <typename T, typename Options>
PyEndpoint<T> open_endpoint(const char* type, const std::string& name, const Options& o, const CommonArgs& args) {
  absl::StatusOr<T> opened = without_gil([&] { return T::open(name, o); });
  if (!opened.ok()) raise_status(opened.status());
  auto box = std::make_shared<EndpointBox>(*std::move(opened), type, name);
  box->yield_phase = args.yield_phase();
  return PyEndpoint<T>{std::move(box)};
}

// --- the classes ----------------------------------------------------------------------------------

template <typename T>
using Class = py::class_<PyEndpoint<T>>;

template <typename T>
Class<T> bind_common(py::module_& m, const char* name, const char* doc) {
  Class<T> c(m, name, doc);
  c.def("close", [](PyEndpoint<T>& self) { self.box->close(); },
        "Closes the endpoint (also on leaving a with block). A loan or view still in use keeps "
        "the channel mapped until it is released. Calling it again does nothing.")
      .def_property_readonly("closed", [](PyEndpoint<T>& self) {
        return self.box->closed.load(std::memory_order_relaxed) || self.box->forked();
      }, "True once close() was called (and in a forked child, where an inherited endpoint is inert).")
      .def_property_readonly("_forked", [](PyEndpoint<T>& self) { return self.box->forked(); })
      .def_property_readonly("name", [](PyEndpoint<T>& self) { return self.box->channel_name; },
                             "The channel's name.")
      .def("wait_fd", [](PyEndpoint<T>& self) {
        EndpointBox& box = self.usable();
        const std::pair<int, int> fd = locked<T>(box, [](T* e, bool) {
          const int got = e == nullptr ? -1 : e->wait_fd();
          return std::pair<int, int>(got, got < 0 ? errno : 0);
        }, true);
        if (fd.first >= 0) return fd.first;
        if (fd.second == ENOTSUP) {
          throw py::value_error(box.what() + ": a read_only subscriber has no descriptor (nobody can wake it)");
        }
        if (fd.second == EBADF) box.raise_unusable();
        errno = fd.second;
        PyErr_SetFromErrno(PyExc_OSError);
        throw py::error_already_set();
      }, "A descriptor that turns readable when this endpoint may have work (docs/events.md): for "
         "select, selectors, asyncio's add_reader, GLib. Drain with try_ calls until they find "
         "nothing (which re-arms it). Closed with the endpoint; do not close it yourself.")
      .def("take_wait_events", [](PyEndpoint<T>& self) {
        return static_cast<std::uint32_t>(self.read([](T& e) { return e.take_wait_events(); }));
      }, "Why the descriptor woke (WaitEvent bits: data, room, peer gone, evicted, removed).")
      .def("stats", [](PyEndpoint<T>& self) { return peer_stats_dict(self.read([](T& e) { return e.stats(); })); },
           "This endpoint's counters (a dict).")
      .def_property_readonly("channel_incarnation", [](PyEndpoint<T>& self) {
        return self.read([](T& e) { return e.channel_incarnation(); });
      }, "Names this incarnation of the channel (changes when it is removed and created again).")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyEndpoint<T>& self, const py::args&) {
        self.box->close();
        return false;
      });
  return c;
}

template <typename T>
void bind_sender(Class<T>& c) {
  c.def("send", [](PyEndpoint<T>& self, const py::object& data, const py::object& timeout) {
          send_buffer(self, data, Deadline::from(timeout));
        }, py::arg("data"), py::arg("timeout") = py::none(),
        "Copies `data` (any bytes-like object) in, waiting up to `timeout` seconds (None: no "
        "limit) while the channel is full. TimeoutError when the time runs out; ValueError when "
        "it is larger than max_message.")
      .def("try_send", [](PyEndpoint<T>& self, const py::object& data) {
        return send_buffer(self, data, std::nullopt);
      }, py::arg("data"), "As send() without waiting: False when the channel is full.")
      .def_property_readonly("max_message", [](PyEndpoint<T>& self) { return self.read([](T& e) { return e.max_message(); }); })
      .def("_loan", [](PyEndpoint<T>& self, std::size_t nbytes, const py::object& timeout) {
        return take_lease(self, Deadline::from(timeout), nbytes, "loan", [nbytes](T& e, std::chrono::nanoseconds slice) {
          if constexpr (std::is_same_v<T, TopicPublisher>) {
            return timed_call(slice, [&] { return e.try_loan(nbytes); }, [&](auto t) { return e.loan(nbytes, t); });
          } else {
            return timed_call(slice, [&] { return e.try_loan(); }, [&](auto t) { return e.loan(t); });
          }
        });
      }, py::arg("nbytes") = 0, py::arg("timeout") = py::none())
      .def("_try_loan", [](PyEndpoint<T>& self, std::size_t nbytes) {
        return take_lease(self, std::nullopt, nbytes, "loan", [nbytes](T& e, std::chrono::nanoseconds) {
          if constexpr (std::is_same_v<T, TopicPublisher>) {
            return e.try_loan(nbytes);
          } else {
            return e.try_loan();
          }
        });
      }, py::arg("nbytes") = 0);
}

template <typename T>
void bind_receiver(Class<T>& c) {
  auto take_view = [](T& e, std::chrono::nanoseconds slice) {
    return timed_call(slice, [&] { return e.try_receive_view(); }, [&](auto t) { return e.receive_view(t); });
  };
  c.def("receive", [](PyEndpoint<T>& self, const py::object& timeout) {
          return receive_bytes(self, Deadline::from(timeout));
        }, py::arg("timeout") = py::none(),
        "The next message as bytes, waiting up to `timeout` seconds (None: no limit); "
        "TimeoutError when the time runs out. The GIL is released while it waits and copies.")
      .def("try_receive", [](PyEndpoint<T>& self) { return receive_bytes(self, std::nullopt); },
           "The next message as bytes, or None when there is none (re-arms wait_fd()).")
      .def("receive_into", [](PyEndpoint<T>& self, const py::object& buffer, const py::object& timeout) {
             return receive_into(self, buffer, Deadline::from(timeout));
           }, py::arg("buffer"), py::arg("timeout") = py::none(),
           "Copies the next message into `buffer` (writable, e.g. a bytearray or numpy array) and "
           "returns its size.")
      .def("try_receive_into", [](PyEndpoint<T>& self, const py::object& buffer) {
             return receive_into(self, buffer, std::nullopt);
           }, py::arg("buffer"), "As receive_into() without waiting: None when there is nothing.")
      .def("_view", [take_view](PyEndpoint<T>& self, const py::object& timeout) {
        return take_lease(self, Deadline::from(timeout), 0, "view", take_view);
      }, py::arg("timeout") = py::none())
      .def("_try_view", [take_view](PyEndpoint<T>& self) { return take_lease(self, std::nullopt, 0, "view", take_view); })
      .def_property_readonly("max_message", [](PyEndpoint<T>& self) { return self.read([](T& e) { return e.max_message(); }); });
}

// The constructor of the queue and frame classes (only the common options).
template <typename T, typename Options>
void bind_common_init(Class<T>& c, const char* type, const char* doc) {
  std::vector<py::arg_v> kw = common_args();
  c.def(py::init([type](const std::string& name, std::uint64_t capacity, std::uint64_t max_message,
                        std::uint32_t max_peers, int permissions, const py::object& group,
                        const py::object& trusted_owners, bool create,
                        double open_timeout, const py::object& wait_strategy, std::uint32_t spin_iterations) {
          Options o;
          const CommonArgs args{capacity, max_message, max_peers, permissions, group, trusted_owners, create, open_timeout,
                                wait_strategy, spin_iterations};
          args.apply(o);
          return open_endpoint<T>(type, name, o, args);
        }),
        py::arg("name"), py::kw_only(), kw[0], kw[1], kw[2], kw[3], kw[4], kw[5], kw[6], kw[7], kw[8], kw[9], doc);
}

// A constructor's docstring (kept for the module's lifetime: pybind11 keeps the pointer).
const char* constructor_doc(const std::string& what, const std::string& capacity) {
  static std::deque<std::string> docs;
  return docs.emplace_back(what + "\n\ncapacity: " + capacity + " " + kCommonOptionsDoc).c_str();
}

constexpr const char* kTopicCreatorDoc =
    "Creator's settings (an opener asking for a different non-zero value gets MismatchError): "
    "max_publishers (publishers open at once, default 1; with several, every subscriber sees all "
    "their messages in one order) and history (messages the ring keeps for late joiners whatever "
    "the publishers do).";

// TopicSubscriber's delivery=: None, "lossless" or "lossy"; None keeps `lossless` as before.
TopicDelivery topic_delivery(const py::object& delivery, bool lossless) {
  if (delivery.is_none()) return TopicDelivery::kDefault;
  if (!py::isinstance<py::str>(delivery)) throw py::type_error("delivery must be 'lossless', 'lossy' or None");
  const std::string d = delivery.cast<std::string>();
  if (d == "lossless") return TopicDelivery::kLossless;
  if (d == "lossy") {
    if (lossless) throw py::value_error("delivery='lossy' contradicts lossless=True");
    return TopicDelivery::kLossy;
  }
  throw py::value_error("delivery must be 'lossless', 'lossy' or None, not '" + d + "'");
}

// TopicSubscriber's start=: None, "live", "latest", "oldest" or an int n >= 0 (the last n).
TopicStart topic_start(const py::object& start, bool start_at_latest) {
  if (start.is_none()) return start_at_latest ? TopicStart::latest() : TopicStart::live();
  if (start_at_latest) throw py::value_error("give start= or start_at_latest=True, not both");
  if (py::isinstance<py::bool_>(start)) throw py::type_error("start must be 'live', 'latest', 'oldest' or an int");
  if (py::isinstance<py::int_>(start)) {
    const long long n = start.cast<long long>();
    if (n < 0) throw py::value_error("start=n asks for the last n messages: n must be >= 0");
    return TopicStart::history(static_cast<std::uint64_t>(n));
  }
  if (py::isinstance<py::str>(start)) {
    const std::string s = start.cast<std::string>();
    if (s == "live") return TopicStart::live();
    if (s == "latest") return TopicStart::latest();
    if (s == "oldest") return TopicStart::oldest();
    throw py::value_error("start must be 'live', 'latest', 'oldest' or an int, not '" + s + "'");
  }
  throw py::type_error("start must be 'live', 'latest', 'oldest' or an int");
}

}  // namespace

void bind_channels(py::module_& m) {
  py::enum_<WaitStrategy>(m, "WaitStrategy", "How a blocking call waits once it cannot go on.")
      .value("BUSY_SPIN", WaitStrategy::kBusySpin, "spin until the deadline (lowest latency, burns a core)")
      .value("YIELD", WaitStrategy::kYield, "sched_yield between attempts until the deadline")
      .value("PARK", WaitStrategy::kPark, "sleep on the channel's wake word at once")
      .value("HYBRID", WaitStrategy::kHybrid, "spin spin_iterations times, then sleep");

  bind_lease(m);

  // Topic.
  auto topic_pub = bind_common<TopicPublisher>(m, "TopicPublisher",
      "A publisher of a topic: every subscriber gets every message (lossy: a slow one skips "
      "ahead and counts what it lost; lossless: the publishers wait for the slowest lossless one).");
  std::vector<py::arg_v> common = common_args();
  topic_pub.def(py::init([](const std::string& name, std::uint64_t capacity, std::uint64_t max_message,
                            std::uint32_t max_peers, int permissions, const py::object& group,
                        const py::object& trusted_owners, bool create,
                            double open_timeout, const py::object& wait_strategy, std::uint32_t spin_iterations,
                            bool lossless, double dead_check_interval, double evict_after, std::uint64_t evict_lag,
                            std::uint32_t max_publishers, std::uint64_t history) {
                  TopicOptions o;
                  const CommonArgs args{capacity, max_message, max_peers, permissions, group, trusted_owners, create, open_timeout,
                                        wait_strategy, spin_iterations};
                  args.apply(o);
                  o.lossless = lossless;
                  o.max_publishers = max_publishers;
                  o.history = history;
                  o.dead_check_interval = millis(dead_check_interval, "dead_check_interval");
                  o.evict_after = millis(evict_after, "evict_after");
                  o.evict_lag = evict_lag;
                  return open_endpoint<TopicPublisher>("TopicPublisher", name, o, args);
                }),
                py::arg("name"), py::kw_only(), common[0], common[1], common[2], common[3], common[4],
                common[5], common[6], common[7], common[8], common[9], py::arg("lossless") = false,
                py::arg("dead_check_interval") = 0.005, py::arg("evict_after") = 0.0, py::arg("evict_lag") = 0,
                py::arg("max_publishers") = 0, py::arg("history") = 0,
                constructor_doc(
                    "Opens (or creates) topic `name` as one of its publishers.",
                    "bytes of the ring, a power of two (creator default 1 MiB). lossless: the "
                    "publisher waits for the slowest subscriber instead of overwriting (the creator "
                    "chooses; everyone must agree). Lossless only: dead_check_interval (seconds held "
                    "back before looking for dead subscribers, and how often), evict_after (seconds "
                    "held back before evicting the slowest live subscriber; 0: never), evict_lag "
                    "(bytes behind at which a subscriber is evicted; 0: never). " + std::string(kTopicCreatorDoc)))
      .def_property_readonly("lossless", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.lossless(); }); })
      .def_property_readonly("evictions", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.evictions(); }); },
                             "Live subscribers this publisher evicted.")
      .def_property_readonly("next_sequence", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.next_sequence(); }); },
                             "The topic sequence number the next message claimed on this topic gets (by any publisher).")
      .def_property_readonly("publisher_id", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.publisher_id(); }); },
                             "This publisher's id as subscribers see it (View.publisher, "
                             "TopicSubscriber.last_publisher): stable while it is open.")
      .def_property_readonly("published", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.published(); }); },
                             "Messages this publisher sent: the publisher sequence its next message carries.")
      .def_property_readonly("max_publishers", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.max_publishers(); }); },
                             "Publishers the topic allows open at once (the creator's setting).")
      .def_property_readonly("history", [](PyEndpoint<TopicPublisher>& s) { return s.read([](auto& e) { return e.history(); }); },
                             "Messages the ring keeps for late joiners (the creator's setting).");
  bind_sender(topic_pub);

  auto topic_sub = bind_common<TopicSubscriber>(m, "TopicSubscriber", "A subscriber of a topic.");
  topic_sub.def(py::init([](const std::string& name, std::uint64_t capacity, std::uint64_t max_message,
                            std::uint32_t max_peers, int permissions, const py::object& group,
                        const py::object& trusted_owners, bool create,
                            double open_timeout, const py::object& wait_strategy, std::uint32_t spin_iterations,
                            bool lossless, bool start_at_latest, bool read_only, std::uint32_t max_publishers,
                            std::uint64_t history, const py::object& delivery, const py::object& start) {
                  TopicOptions o;
                  const CommonArgs args{capacity, max_message, max_peers, permissions, group, trusted_owners, create, open_timeout,
                                        wait_strategy, spin_iterations};
                  args.apply(o);
                  o.lossless = lossless;
                  o.max_publishers = max_publishers;
                  o.history = history;
                  o.delivery = topic_delivery(delivery, lossless);
                  o.start = topic_start(start, start_at_latest);
                  o.read_only = read_only;
                  return open_endpoint<TopicSubscriber>("TopicSubscriber", name, o, args);
                }),
                py::arg("name"), py::kw_only(), common[0], common[1], common[2], common[3], common[4],
                common[5], common[6], common[7], common[8], common[9], py::arg("lossless") = false,
                py::arg("start_at_latest") = false, py::arg("read_only") = false,
                py::arg("max_publishers") = 0, py::arg("history") = 0, py::arg("delivery") = py::none(),
                py::arg("start") = py::none(),
                constructor_doc(
                    "Opens (or creates) topic `name` as a subscriber.",
                    "bytes of the ring, a power of two (creator default 1 MiB). lossless: this subscriber "
                    "holds the publishers back (else the creator's default delivery; when it creates the "
                    "topic, also the creator's default). delivery: 'lossless' or 'lossy' (this "
                    "subscriber's choice, whatever the creator's default; None: that default or "
                    "`lossless`). start: 'live' (messages published after it opened; the default), "
                    "'latest' (the newest message, then live), 'oldest' (everything the ring still "
                    "holds) or an int n (the last n, then live); history_missed then says how many "
                    "of those were no longer there. start_at_latest=True is start='latest'. "
                    "read_only: attach the segment read-only (lossy topics; works with 0o644-style "
                    "permissions for other users; not registered, so it polls and has no wait_fd()). " +
                        std::string(kTopicCreatorDoc)))
      .def_property_readonly("lossless", [](PyEndpoint<TopicSubscriber>& s) { return s.read([](auto& e) { return e.lossless(); }); })
      .def_property_readonly("lost", [](PyEndpoint<TopicSubscriber>& s) { return s.read([](auto& e) { return e.lost(); }); },
                             "Messages skipped after being lapped (exact).")
      .def_property_readonly("received", [](PyEndpoint<TopicSubscriber>& s) { return s.read([](auto& e) { return e.received(); }); })
      .def_property_readonly("last_sequence", [](PyEndpoint<TopicSubscriber>& s) { return s.read([](auto& e) { return e.last_sequence(); }); },
                             "The sequence number of the message most recently received or viewed (0 before the first).")
      .def_property_readonly("next_sequence", [](PyEndpoint<TopicSubscriber>& s) {
        return s.read([](auto& e) { return e.next_sequence(); });
      }, "The sequence number the next message will carry if none is lost; None when unknown.")
      .def_property_readonly("last_publisher", [](PyEndpoint<TopicSubscriber>& s) { return s.read([](auto& e) { return e.last_publisher(); }); },
                             "The publisher id of the message most recently received or viewed (0 before the first).")
      .def_property_readonly("last_publisher_sequence", [](PyEndpoint<TopicSubscriber>& s) {
        return s.read([](auto& e) { return e.last_publisher_sequence(); });
      }, "That publisher's own number of the message most recently received or viewed.")
      .def_property_readonly("history_missed", [](PyEndpoint<TopicSubscriber>& s) { return s.read([](auto& e) { return e.history_missed(); }); },
                             "Of the messages a 'latest' or n start asked for, how many were no longer in the ring.")
      .def_property_readonly("delivery", [](PyEndpoint<TopicSubscriber>& s) {
        return s.read([](auto& e) { return std::string(e.delivery() == TopicDelivery::kLossless ? "lossless" : "lossy"); });
      }, "This subscriber's delivery: 'lossless' or 'lossy'.");
  bind_receiver(topic_sub);

  // Queue.
  auto producer = bind_common<QueueProducer>(m, "QueueProducer",
      "A producer of a work queue: every item goes to exactly one consumer.");
  bind_common_init<QueueProducer, QueueOptions>(producer, "QueueProducer",
      constructor_doc("Opens (or creates) work queue `name` as a producer.",
                      "items the queue holds, a power of two (creator default 1024; max_message "
                      "default 256)."));
  producer.def_property_readonly("capacity", [](PyEndpoint<QueueProducer>& s) { return s.read([](auto& e) { return e.capacity(); }); })
      .def_property_readonly("size", [](PyEndpoint<QueueProducer>& s) { return s.read([](auto& e) { return e.size_approx(); }); },
                             "Items waiting (approximate).");
  bind_sender(producer);

  auto consumer = bind_common<QueueConsumer>(m, "QueueConsumer",
      "A consumer of a work queue (consumers compete for the items).");
  bind_common_init<QueueConsumer, QueueOptions>(consumer, "QueueConsumer",
      constructor_doc("Opens (or creates) work queue `name` as a consumer.",
                      "items the queue holds, a power of two (creator default 1024; max_message "
                      "default 256)."));
  consumer.def_property_readonly("capacity", [](PyEndpoint<QueueConsumer>& s) { return s.read([](auto& e) { return e.capacity(); }); })
      .def_property_readonly("size", [](PyEndpoint<QueueConsumer>& s) { return s.read([](auto& e) { return e.size_approx(); }); },
                             "Items waiting (approximate).");
  bind_receiver(consumer);

  // Frames.
  auto frame_pub = bind_common<FramePublisher>(m, "FramePublisher",
      "The publisher of a frames channel: large frames written in place, subscribers take the newest.");
  bind_common_init<FramePublisher, FrameOptions>(frame_pub, "FramePublisher",
      constructor_doc("Opens (or creates) frames channel `name` as its one publisher.",
                      "frame buffers, 3 to 64 (creator default 4; max_message: bytes per frame, "
                      "default 4 MiB)."));
  frame_pub.def_property_readonly("frames_published", [](PyEndpoint<FramePublisher>& s) {
    return s.read([](auto& e) { return e.frames_published(); });
  });
  bind_sender(frame_pub);

  auto frame_sub = bind_common<FrameSubscriber>(m, "FrameSubscriber",
      "A subscriber of a frames channel: each receive takes the newest frame (older ones are skipped).");
  bind_common_init<FrameSubscriber, FrameOptions>(frame_sub, "FrameSubscriber",
      constructor_doc("Opens (or creates) frames channel `name` as a subscriber.",
                      "frame buffers, 3 to 64 (creator default 4; max_message: bytes per frame, "
                      "default 4 MiB)."));
  frame_sub.def_property_readonly("lost", [](PyEndpoint<FrameSubscriber>& s) { return s.read([](auto& e) { return e.lost(); }); })
      .def_property_readonly("received", [](PyEndpoint<FrameSubscriber>& s) { return s.read([](auto& e) { return e.received(); }); });
  bind_receiver(frame_sub);

  // The WaitEvent bits, for shmring.WaitEvent.
  m.attr("_WAIT_EVENT_BITS") = py::dict(
      py::arg("DATA") = static_cast<std::uint32_t>(WaitEvent::kData),
      py::arg("ROOM") = static_cast<std::uint32_t>(WaitEvent::kRoom),
      py::arg("PEER_GONE") = static_cast<std::uint32_t>(WaitEvent::kPeerGone),
      py::arg("EVICTED") = static_cast<std::uint32_t>(WaitEvent::kEvicted),
      py::arg("REMOVED") = static_cast<std::uint32_t>(WaitEvent::kRemoved));
}

}  // namespace shmring::python
