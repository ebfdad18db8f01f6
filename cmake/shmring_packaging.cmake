# Debian packages, made by CPack from the install rules' components (`cpack -G DEB` in a build
# configured with -DCMAKE_INSTALL_PREFIX=/usr; tests/packaging/packages_test.sh does it all):
#
#   libshmring0.3     runtime   libshmring.so.0.3 (the C and C++ API, public symbols only)
#   libshmring-dev    dev       headers, static libraries, libshmring.so, CMake package, shmring.pc
#   shmring           cli       the command line, its man page and bash completion, the gc timer
#   python3-shmring   python    the Python package as the build makes it
#
# Each package carries /usr/share/doc/<package>/{copyright,changelog.gz}.

set(CPACK_PACKAGE_NAME shmring)
set(CPACK_PACKAGE_VENDOR "shmring")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "message passing between processes through shared memory")
if(NOT CPACK_PACKAGE_CONTACT)
  set(CPACK_PACKAGE_CONTACT "shmring maintainers <shmring@users.noreply.github.com>")
endif()
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)

set(_runtime_package libshmring${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
set(CPACK_COMPONENTS_ALL dev cli)
if(TARGET shmring_shared)
  list(APPEND CPACK_COMPONENTS_ALL runtime)
endif()
if(TARGET _shmring)
  list(APPEND CPACK_COMPONENTS_ALL python)
endif()

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${_runtime_package})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# A shlibs file (packages linking libshmring get "libshmring0.3 (>= version)"), and ldconfig run
# by a trigger (CPack's postinst/postrm also call it).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/runtime/triggers)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "shmring shared library: message passing through shared memory
 shmring moves messages between processes on Linux through shared memory,
 lock-free on the data path and without a daemon: topics (one publisher, many
 subscribers), queues (competing consumers) and frames (large buffers written
 and read in place). This package holds the shared library: the C API
 (shmring/shmring.h) and the C++ API, for programs in C, C++ and any language
 with a C FFI.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libshmring-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(_dev_depends "libabsl-dev, libboost-dev")
if(TARGET shmring_bridge)
  string(APPEND _dev_depends ", libzmq3-dev")  # shmring::bridge links libzmq
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${_dev_depends}")
set(CPACK_COMPONENT_DEV_DESCRIPTION
  "shmring development files: headers, libraries, CMake and pkg-config
 The headers of shmring's C++20 API (shmring/core, shmring/queue,
 shmring/transport, shmring/bridge) and C API (shmring/shmring.h), the static
 libraries, the libshmring.so link, the CMake package (find_package(shmring):
 shmring::shmring, shmring::c, shmring::shared, ...) and shmring.pc.")

set(CPACK_DEBIAN_CLI_PACKAGE_NAME shmring)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
set(CPACK_COMPONENT_CLI_DESCRIPTION
  "shmring command line: inspect, feed and clean up shared-memory channels
 The shmring command lists and inspects shmring channels (counters, rates,
 every endpoint and its lag), publishes to them and prints from them, removes
 what crashed processes left behind, carries channels to other hosts over
 ZeroMQ and benchmarks them. With its man page, bash completion and a systemd
 timer that removes stale segments (systemctl enable --now shmring-gc.timer).")

set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-shmring)
set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
set(CPACK_DEBIAN_PYTHON_PACKAGE_RECOMMENDS python3-numpy)
set(CPACK_DEBIAN_PYTHON_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/cmake/debian/python/postinst ${PROJECT_SOURCE_DIR}/cmake/debian/python/prerm)
set(CPACK_DEBIAN_PYTHON_PACKAGE_CONTROL_STRICT_PERMISSION ON)
if(SHMRING_PYTHON_EXECUTABLE)
  execute_process(COMMAND ${SHMRING_PYTHON_EXECUTABLE} -c
                          "import sys; print('%d.%d' % sys.version_info[:2]); print('%d.%d' % (sys.version_info[0], sys.version_info[1] + 1))"
                  OUTPUT_VARIABLE _py OUTPUT_STRIP_TRAILING_WHITESPACE)
  string(REPLACE "\n" ";" _py "${_py}")
  list(GET _py 0 _py_this)
  list(GET _py 1 _py_next)
  # The extension module is built for this interpreter's ABI.
  set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "python3 (>= ${_py_this}), python3 (<< ${_py_next})")
endif()
set(CPACK_COMPONENT_PYTHON_DESCRIPTION
  "shmring for Python 3: shared-memory channels with zero-copy views
 The shmring Python package: topics, queues and frames from Python, sharing
 channels with C and C++ processes; loans and views are memoryviews numpy
 reads in place, waits release the GIL, and asyncio can await a receive.")
# Wherever the tree put the Python package, the Debian package has it in /usr/lib/python3.
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/debian/pre_build.cmake)

# /usr/share/doc/<package>/copyright and changelog.gz (a native package's), for each package.
string(TIMESTAMP _date "%a, %d %b %Y %H:%M:%S +0000" UTC)
foreach(_component runtime dev cli python)
  string(TOUPPER ${_component} _upper)
  set(_pkg ${CPACK_DEBIAN_${_upper}_PACKAGE_NAME})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/debian/changelog.in
                 ${PROJECT_BINARY_DIR}/debian/${_pkg}/changelog @ONLY)
  add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/debian/${_pkg}/changelog.gz
    COMMAND gzip -9nfk changelog
    DEPENDS ${PROJECT_BINARY_DIR}/debian/${_pkg}/changelog
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/debian/${_pkg})
  list(APPEND _changelogs ${PROJECT_BINARY_DIR}/debian/${_pkg}/changelog.gz)
  install(FILES ${PROJECT_SOURCE_DIR}/cmake/debian/copyright
                ${PROJECT_BINARY_DIR}/debian/${_pkg}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_pkg} COMPONENT ${_component})
endforeach()
add_custom_target(shmring_debian_changelogs ALL DEPENDS ${_changelogs})

include(CPack)
