# CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS), run on the staged files before they are packed.
#
# Static libraries carry no debug information in libshmring-dev (as Debian's -dev packages; CPack
# strips executables and shared libraries itself).
find_program(_strip strip)
file(GLOB_RECURSE _archives "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*.a")
foreach(_archive IN LISTS _archives)
  execute_process(COMMAND ${_strip} --strip-debug "${_archive}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "strip --strip-debug ${_archive} failed")
  endif()
endforeach()

# In the python3-shmring package, the Python
# package goes to /usr/lib/python3/dist-packages, where Debian keeps packaged modules for every
# Python 3, whatever SHMRING_PYTHON_INSTALL_DIR the build tree was configured with (a /usr/local
# tree says lib/python3.X/dist-packages).
file(GLOB _versioned LIST_DIRECTORIES true
     "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/lib/python3.*/dist-packages/shmring"
     "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*/usr/lib/python3.*/dist-packages/shmring")
foreach(_dir IN LISTS _versioned)
  get_filename_component(_site "${_dir}" DIRECTORY)         # .../usr/lib/python3.X/dist-packages
  get_filename_component(_versioned_dir "${_site}" DIRECTORY)  # .../usr/lib/python3.X
  get_filename_component(_lib "${_versioned_dir}" DIRECTORY)   # .../usr/lib
  file(MAKE_DIRECTORY "${_lib}/python3/dist-packages")
  file(RENAME "${_dir}" "${_lib}/python3/dist-packages/shmring")
  file(REMOVE_RECURSE "${_versioned_dir}")
  message(STATUS "python3-shmring: the package goes to /usr/lib/python3/dist-packages")
endforeach()
