# libshmring.so: core, queue, transport and the C API (shmring::c) in one shared library, target
# shmring::shared. Its objects are the static libraries' (built position independent, compiled
# once); the SONAME carries MAJOR.MINOR (libshmring.so.0.3: a 0.x minor release may change the C++
# ABI; the C API only grows, see docs/c-api.md); cmake/libshmring.map exports the public API only.
# Not in sanitizer builds (a sanitized .so needs its runtime preloaded into every host process).
set(_shmring_shared ${SHMRING_INSTALL})
if(SHMRING_SANITIZE)
  set(_shmring_shared OFF)
endif()
option(SHMRING_BUILD_SHARED "Build libshmring.so (C and C++ API, public symbols only)" ${_shmring_shared})
if(NOT SHMRING_BUILD_SHARED)
  return()
endif()

set(_map ${PROJECT_SOURCE_DIR}/cmake/libshmring.map)
add_library(shmring_shared SHARED
  $<TARGET_OBJECTS:shmring_core> $<TARGET_OBJECTS:shmring_queue> $<TARGET_OBJECTS:shmring_transport>
  $<TARGET_OBJECTS:shmring_c>)
add_library(shmring::shared ALIAS shmring_shared)
set_target_properties(shmring_shared PROPERTIES
  OUTPUT_NAME shmring
  EXPORT_NAME shared
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
  LINK_DEPENDS ${_map}
  LINKER_LANGUAGE CXX)
# What a user of the public headers needs: C++20, absl's status types, threads (absl's are also
# what the objects need; Boost.Interprocess is header-only).
target_link_libraries(shmring_shared PUBLIC absl::status absl::statusor absl::strings Threads::Threads)
target_link_libraries(shmring_shared PRIVATE Boost::headers)
target_compile_features(shmring_shared PUBLIC cxx_std_20)
foreach(_dir core/include queue/include transport/include transport/c/include)
  target_include_directories(shmring_shared PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/${_dir}>)
endforeach()
target_include_directories(shmring_shared PUBLIC $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_options(shmring_shared PRIVATE -Wl,--version-script=${_map} -Wl,--no-undefined -Wl,-z,defs)

if(SHMRING_INSTALL)
  install(TARGETS shmring_shared EXPORT shmringTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
  # pkg-config: `pkg-config --cflags --libs shmring` for C (shmring/shmring.h) and C++ (add
  # -std=c++20); the absl modules give C++ users the status types' flags and libraries.
  # Written when installing, with the prefix then in force (a package made from a /usr/local
  # build tree still says prefix=/usr).
  install(CODE "
    set(_pc_prefix \"\${CMAKE_INSTALL_PREFIX}\")
    set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    set(PROJECT_VERSION \"${PROJECT_VERSION}\")
    configure_file(\"${PROJECT_SOURCE_DIR}/cmake/shmring.pc.in\" \"${PROJECT_BINARY_DIR}/shmring.pc\" @ONLY)
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
         FILES \"${PROJECT_BINARY_DIR}/shmring.pc\")" COMPONENT dev)
endif()
