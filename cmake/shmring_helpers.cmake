# Helpers shared by every layer: warnings, sanitizers and the library/test wrappers.

set(SHMRING_WARNINGS -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Woverloaded-virtual)
if(SHMRING_WERROR)
  list(APPEND SHMRING_WARNINGS -Werror)
endif()

if(SHMRING_SANITIZE)
  string(REPLACE ";" "," _shmring_san "${SHMRING_SANITIZE}")
  add_compile_options(-fsanitize=${_shmring_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_shmring_san})
endif()

# shmring_library(NAME layer SOURCES ... DEPS ...)
# Builds shmring_<layer>, aliased shmring::<layer>, with public headers in <layer>/include.
function(shmring_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  set(target shmring_${ARG_NAME})
  add_library(${target} ${ARG_SOURCES})
  add_library(shmring::${ARG_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME} POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE ${SHMRING_WARNINGS})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS})
  if(SHMRING_INSTALL)
    install(TARGETS ${target} EXPORT shmringTargets COMPONENT dev)
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
  endif()
endfunction()

# shmring_test(NAME name SOURCES ... LABELS ... [TIMEOUT s] [DEPS ...])
# One GoogleTest executable registered as one ctest test (so multi-process tests that fork do
# not get split into many ctest processes competing for the two cores).
function(shmring_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SOURCES;LABELS;DEPS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_compile_options(${ARG_NAME} PRIVATE ${SHMRING_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE shmring_testing GTest::gtest_main ${ARG_DEPS})
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME} --gtest_color=no)
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
                       FIXTURES_REQUIRED shmring_segments)
endfunction()
