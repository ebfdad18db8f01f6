// SharedMemory and SystemSemaphore for Python: the QSharedMemory / QSystemSemaphore contract (bool
// results, error() and error_string()), with the waits made interruptible and the segment's memory
// exported as a memoryview that cannot outlive the mapping.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>

#include <memory>
#include <mutex>

#include "box.h"
#include "errors.h"
#include "shmring/core/shared_memory.h"
#include "shmring/core/system_semaphore.h"

namespace shmring::python {

namespace {

// A SharedMemory and how many memoryview exporters of its mapping are alive: detach() refuses
// while any is, so Python never reaches unmapped memory.
struct SegmentBox {
  SharedMemory shm;
  int exporters = 0;
};

struct PySharedMemory {
  std::shared_ptr<SegmentBox> box = std::make_shared<SegmentBox>();
};

// The exporter behind SharedMemory.data(): holds the segment box (and so the object) alive.
struct PyMapping {
  std::shared_ptr<SegmentBox> box;
  void* ptr = nullptr;
  std::size_t size = 0;
  bool writable = false;
  PyMapping(std::shared_ptr<SegmentBox> b, void* p, std::size_t n, bool w)
      : box(std::move(b)), ptr(p), size(n), writable(w) {
    ++box->exporters;
  }
  PyMapping(const PyMapping&) = delete;
  PyMapping& operator=(const PyMapping&) = delete;
  ~PyMapping() { --box->exporters; }
};

void refuse_while_exported(const SegmentBox& box, const char* call) {
  if (box.exporters > 0) {
    PyErr_SetString(PyExc_BufferError,
                    (std::string("SharedMemory.") + call + ": memoryviews of data() are still alive; "
                     "release them (del, or .release()) first")
                        .c_str());
    throw py::error_already_set();
  }
}

// Waits in slices with the GIL released, running signal handlers in between: `try_for(ms)` is
// try_lock_for / try_acquire_for. timeout None: no limit.
template <typename TryFor>
bool interruptible(const py::object& timeout, TryFor&& try_for) {
  return wait_in_slices(Deadline::from(timeout), [&](std::chrono::nanoseconds slice) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(slice).count();
    return without_gil([&] { return try_for(ms); });
  });
}

}  // namespace

void bind_segment(py::module_& m) {
  py::enum_<AccessMode>(m, "AccessMode", "How a segment is attached.")
      .value("READ_ONLY", AccessMode::kReadOnly)
      .value("READ_WRITE", AccessMode::kReadWrite);
  py::enum_<SharedMemoryError>(m, "SharedMemoryError", "QSharedMemory's error codes, value for value.")
      .value("NO_ERROR", SharedMemoryError::kNoError)
      .value("PERMISSION_DENIED", SharedMemoryError::kPermissionDenied)
      .value("INVALID_SIZE", SharedMemoryError::kInvalidSize)
      .value("KEY_ERROR", SharedMemoryError::kKeyError)
      .value("ALREADY_EXISTS", SharedMemoryError::kAlreadyExists)
      .value("NOT_FOUND", SharedMemoryError::kNotFound)
      .value("LOCK_ERROR", SharedMemoryError::kLockError)
      .value("OUT_OF_RESOURCES", SharedMemoryError::kOutOfResources)
      .value("UNKNOWN_ERROR", SharedMemoryError::kUnknownError);

  py::enum_<DestroyMode>(m, "DestroyMode", "How SharedMemory.destroy() removes a segment.")
      .value("NO_WAIT", DestroyMode::kNoWait, "take the lock, remove the name and the lock now")
      .value("FORCE_NO_WAIT", DestroyMode::kForceNoWait, "remove the name and the lock now, without the lock")
      .value("WAIT", DestroyMode::kWait, "remove the name now; the lock and memory go with the last detach");

  py::class_<PyMapping>(m, "_Mapping", py::buffer_protocol())
      .def_buffer([](PyMapping& mapping) {
        return py::buffer_info(mapping.ptr, 1, py::format_descriptor<std::uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(mapping.size)}, {1}, !mapping.writable);
      });

  py::class_<PySharedMemory>(m, "SharedMemory",
      "A named shared memory segment with the QSharedMemory contract: create/attach/detach, "
      "lock/unlock (released if its holder dies), error()/error_string().")
      .def(py::init([](const py::object& key, const py::object& native_key) {
             PySharedMemory s;
             if (!key.is_none()) s.box->shm.set_key(key.cast<std::string>());
             if (!native_key.is_none()) s.box->shm.set_native_key(native_key.cast<std::string>());
             return s;
           }),
           py::arg("key") = py::none(), py::kw_only(), py::arg("native_key") = py::none(),
           "A segment handle for `key` (the QSharedMemory contract: nothing is attached until "
           "create() or attach()). shmring.SharedMemory adds the standard library's habits.")
      .def("set_key", [](PySharedMemory& s, const std::string& key) {
        refuse_while_exported(*s.box, "set_key");
        s.box->shm.set_key(key);
      }, py::arg("key"))
      .def_property_readonly("key", [](PySharedMemory& s) { return s.box->shm.key(); })
      .def("set_native_key", [](PySharedMemory& s, const std::string& key) {
        refuse_while_exported(*s.box, "set_native_key");
        s.box->shm.set_native_key(key);
      }, py::arg("native_key"))
      .def_property_readonly("native_key", [](PySharedMemory& s) { return s.box->shm.native_key(); })
      .def("set_permissions", [](PySharedMemory& s, int mode) {
        if (mode < 0 || mode > 07777) throw py::value_error("mode must be within 0o0000..0o7777");
        s.box->shm.set_permissions(static_cast<mode_t>(mode));
      }, py::arg("mode"), "Mode bits (e.g. 0o660) of a segment create() makes from now on.")
      .def("set_group", [](PySharedMemory& s, int gid) {
        s.box->shm.set_group(static_cast<gid_t>(gid));
      }, py::arg("gid"), "Group of a segment create() makes from now on (-1: the creator's).")
      .def_property_readonly("group", [](PySharedMemory& s) { return static_cast<int>(s.box->shm.group()); })
      .def("set_trust", [](PySharedMemory& s, bool any_owner, const std::vector<uid_t>& trusted_owners, int max_mode) {
        if (max_mode < 0 || max_mode > 07777) throw py::value_error("max_mode must be within 0o0000..0o7777");
        s.box->shm.set_trust(SharedMemory::Trust{any_owner, trusted_owners, static_cast<mode_t>(max_mode)});
      }, py::kw_only(), py::arg("any_owner") = true, py::arg("trusted_owners") = std::vector<uid_t>{},
         py::arg_v("max_mode", 0777, "0o777"),
         "Which existing segments attach() accepts: with any_owner=False, only "
         "one owned by this user or one of trusted_owners (uids) whose mode grants nothing outside "
         "max_mode; others fail with PERMISSION_DENIED before anything is mapped.")
      .def("create", [](PySharedMemory& s, std::size_t size, AccessMode mode) {
        return without_gil([&] { return s.box->shm.create(size, mode); });
      }, py::arg("size"), py::arg("mode") = AccessMode::kReadWrite,
         "Creates and attaches a segment of `size` bytes (zeroed). False if it exists (ALREADY_EXISTS) "
         "or on another error (see error()).")
      .def("attach", [](PySharedMemory& s, AccessMode mode) {
        return without_gil([&] { return s.box->shm.attach(mode); });
      }, py::arg("mode") = AccessMode::kReadWrite)
      .def("detach", [](PySharedMemory& s) {
        refuse_while_exported(*s.box, "detach");
        return without_gil([&] { return s.box->shm.detach(); });
      }, "Detaches (the last one out removes the segment). BufferError while data() memoryviews live.")
      .def("is_attached", [](PySharedMemory& s) { return s.box->shm.is_attached(); })
      .def_property_readonly("size", [](PySharedMemory& s) { return s.box->shm.size(); })
      .def("data", [](PySharedMemory& s) -> py::object {
        SharedMemory& shm = s.box->shm;
        if (!shm.is_attached()) throw py::value_error("SharedMemory.data: not attached");
        const bool writable = shm.access_mode() == AccessMode::kReadWrite;
        void* ptr = writable ? shm.data() : const_cast<void*>(shm.const_data());
        py::object mapping = py::cast(std::make_unique<PyMapping>(s.box, ptr, shm.size(), writable));
        return py::reinterpret_steal<py::object>(PyMemoryView_FromObject(mapping.ptr()));
      }, "The segment's bytes as a memoryview (read-only when attached READ_ONLY). detach() refuses "
         "while one is alive.")
      .def("lock", [](PySharedMemory& s, const py::object& timeout) {
        SharedMemory& shm = s.box->shm;
        return interruptible(timeout, [&](std::int64_t ms) { return shm.try_lock_for(ms); });
      }, py::arg("timeout") = py::none(),
         "Takes the segment's lock, waiting up to `timeout` seconds (None: no limit; Ctrl-C "
         "interrupts). False on timeout or error (see error()).")
      .def("unlock", [](PySharedMemory& s) { return s.box->shm.unlock(); })
      .def("destroy", [](PySharedMemory& s, DestroyMode mode) {
        refuse_while_exported(*s.box, "destroy");
        return without_gil([&] { return s.box->shm.destroy(mode); });
      }, py::arg("mode") = DestroyMode::kNoWait,
         "Removes the segment's name now (Qt Solutions' destroy; see DestroyMode) and detaches this "
         "object. Attachments elsewhere keep their mapping until they detach. BufferError while "
         "data() memoryviews live.")
      .def("exists", [](PySharedMemory& s) { return s.box->shm.exists(); })
      .def("num_attachments", [](PySharedMemory& s) { return s.box->shm.num_attachments(); })
      .def("error", [](PySharedMemory& s) { return s.box->shm.error(); })
      .def("error_string", [](PySharedMemory& s) { return s.box->shm.error_string(); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PySharedMemory& s, py::args) {
        if (s.box->shm.holds_lock()) s.box->shm.unlock();
        if (s.box->exporters == 0 && s.box->shm.is_attached()) s.box->shm.detach();
        return false;
      });

  py::enum_<SemaphoreAccessMode>(m, "SemaphoreAccessMode")
      .value("OPEN", SemaphoreAccessMode::kOpen)
      .value("CREATE", SemaphoreAccessMode::kCreate);
  py::enum_<SystemSemaphoreError>(m, "SystemSemaphoreError", "QSystemSemaphore's error codes.")
      .value("NO_ERROR", SystemSemaphoreError::kNoError)
      .value("PERMISSION_DENIED", SystemSemaphoreError::kPermissionDenied)
      .value("KEY_ERROR", SystemSemaphoreError::kKeyError)
      .value("ALREADY_EXISTS", SystemSemaphoreError::kAlreadyExists)
      .value("NOT_FOUND", SystemSemaphoreError::kNotFound)
      .value("OUT_OF_RESOURCES", SystemSemaphoreError::kOutOfResources)
      .value("UNKNOWN_ERROR", SystemSemaphoreError::kUnknownError);

  py::class_<SystemSemaphore>(m, "SystemSemaphore",
      "A named counting semaphore with the QSystemSemaphore contract; tokens a process holds are "
      "given back when it dies.")
      .def(py::init([](const std::string& key, int initial, SemaphoreAccessMode mode) {
             return without_gil([&] { return std::make_unique<SystemSemaphore>(key, initial, mode); });
           }),
           py::arg("key"), py::arg("initial") = 0, py::arg("mode") = SemaphoreAccessMode::kOpen,
           "Opens (OPEN) or creates (CREATE, with `initial` tokens) the semaphore `key`.")
      .def_property_readonly("key", &SystemSemaphore::key)
      .def("acquire", [](SystemSemaphore& s, const py::object& timeout) {
        return interruptible(timeout, [&](std::int64_t ms) { return s.try_acquire_for(ms); });
      }, py::arg("timeout") = py::none(),
         "Takes one token, waiting up to `timeout` seconds (None: no limit; Ctrl-C interrupts).")
      .def("try_acquire", &SystemSemaphore::try_acquire)
      .def("release", &SystemSemaphore::release, py::arg("n") = 1)
      .def("remove", &SystemSemaphore::remove)
      .def("error", &SystemSemaphore::error)
      .def("error_string", &SystemSemaphore::error_string);
}

}  // namespace shmring::python
