// The C++ half of the `shmring` Python package (_shmring); shmring/__init__.py builds the
// Pythonic API on it.
#include <pybind11/pybind11.h>

#include "box.h"
#include "errors.h"

namespace shmring::python {
void bind_channels(pybind11::module_& m);
void bind_inspection(pybind11::module_& m);
void bind_segment(pybind11::module_& m);
void bind_services(pybind11::module_& m);  // services.cc
}  // namespace shmring::python

PYBIND11_MODULE(_shmring, m) {
  m.doc() = "shmring's C++ core (use the shmring package).";
  m.attr("__version__") = SHMRING_VERSION;  // the project's version (CMakeLists.txt)
  shmring::python::register_exceptions(m);
  shmring::python::bind_channels(m);
  shmring::python::bind_inspection(m);
  shmring::python::bind_segment(m);
  shmring::python::bind_services(m);
  m.def("_interpreter_exiting", &shmring::python::mark_interpreter_exiting,
        "For the package's atexit callback: daemon threads coming back from a wait park from now on.");
}
