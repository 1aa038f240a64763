# cmake --install: headers, libemix.so and libemix.a (and, built with MPI, libemix_mpi.so and
# libemix_mpi.a), the emix program, the CMake package (find_package(emix 0.1) -> emix::emix,
# emix::emix_static; COMPONENTS mpi -> emix::emix_mpi, emix::emix_mpi_static) and emix.pc (and
# emix-mpi.pc) for pkg-config.
# Every installed path is relative to the prefix, so the tree can be moved.
include(CMakePackageConfigHelpers)

set(EMIX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/emix)
set(EMIX_FORTRAN_DIR ${CMAKE_INSTALL_DATADIR}/emix/fortran)

install(TARGETS emix_shared emix_static EXPORT emixTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The MPI library in an export set of its own, which emixConfig.cmake loads for
# find_package(emix COMPONENTS mpi) only: other programs never look for MPI.
if(EMIX_HAS_MPI)
  install(TARGETS emix_mpi_shared emix_mpi_static EXPORT emixMpiTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT emixMpiTargets NAMESPACE emix:: DESTINATION ${EMIX_CMAKE_DIR})
endif()
if(TARGET emix_cli)
  install(TARGETS emix_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(TARGET emix_cli_mpi)  # beside emix, which runs it under mpirun
  install(TARGETS emix_cli_mpi RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

install(DIRECTORY include/emix DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h"
        PATTERN "mpi.hpp" EXCLUDE PATTERN "emix_mpi.h" EXCLUDE)
if(EMIX_HAS_MPI)
  install(FILES include/emix/mpi.hpp include/emix/emix_mpi.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/emix)
endif()
install(FILES ${PROJECT_BINARY_DIR}/include/emix/config.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/emix)
# The Fortran binding is source: Fortran module files are specific to one compiler's version,
# so the program that uses it compiles it (emixConfig.cmake names it: emix_FORTRAN_SOURCES).
install(FILES fortran/emix.f90 DESTINATION ${EMIX_FORTRAN_DIR})

# The files made for the install go to a folder find_package and pkg-config do not search: at
# the build folder's top, a CMAKE_PREFIX_PATH naming the build folder found an emixConfig.cmake
# whose targets and paths exist only once installed.
set(EMIX_INSTALL_FILES ${PROJECT_BINARY_DIR}/install-files)
# The C++ runtime libemix.a needs, which emixConfig.cmake adds for a project that links
# emix::emix_static with a C or Fortran driver, and emix.pc lists for a static link: the
# standard C++ library and libm that this build's C++ compiler links (stdc++ with GCC and
# Clang, c++ with libc++). Other compilers' runtimes (Intel's svml, NVHPC's) are not named:
# with those, link emix::emix_static with the C++ compiler.
set(EMIX_CXX_RUNTIME_LIBRARIES "")
foreach(library IN LISTS CMAKE_CXX_IMPLICIT_LINK_LIBRARIES)
  if(library MATCHES "^(stdc\\+\\+|c\\+\\+|c\\+\\+abi|m)$")
    list(APPEND EMIX_CXX_RUNTIME_LIBRARIES ${library})
  endif()
endforeach()
list(REMOVE_DUPLICATES EMIX_CXX_RUNTIME_LIBRARIES)
install(EXPORT emixTargets NAMESPACE emix:: DESTINATION ${EMIX_CMAKE_DIR})
configure_package_config_file(cmake/emixConfig.cmake.in
  ${EMIX_INSTALL_FILES}/emixConfig.cmake
  INSTALL_DESTINATION ${EMIX_CMAKE_DIR}
  PATH_VARS EMIX_FORTRAN_DIR)
# 0.x: minor versions may break the API, so 0.1 accepts 0.1.* only.
write_basic_package_version_file(${EMIX_INSTALL_FILES}/emixConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${EMIX_INSTALL_FILES}/emixConfig.cmake ${EMIX_INSTALL_FILES}/emixConfigVersion.cmake
        DESTINATION ${EMIX_CMAKE_DIR})

# pkg-config: ${pcfiledir} keeps the file relocatable. Libs.private lists what a static link
# needs besides libemix.a.
file(RELATIVE_PATH EMIX_PC_TO_PREFIX
     ${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" EMIX_PC_TO_PREFIX "${EMIX_PC_TO_PREFIX}")  # no "//" in the paths
set(EMIX_PC_LIBS_PRIVATE "")
foreach(library IN LISTS EMIX_CXX_RUNTIME_LIBRARIES)
  string(APPEND EMIX_PC_LIBS_PRIVATE " -l${library}")
endforeach()
string(STRIP "${EMIX_PC_LIBS_PRIVATE}" EMIX_PC_LIBS_PRIVATE)
foreach(flag ${OpenMP_CXX_FLAGS})
  string(APPEND EMIX_PC_LIBS_PRIVATE " ${flag}")
endforeach()
if(EMIX_HAS_CUDA)
  string(APPEND EMIX_PC_LIBS_PRIVATE
         " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -lrt -lpthread -ldl")
endif()
configure_file(cmake/emix.pc.in ${EMIX_INSTALL_FILES}/emix.pc @ONLY)
install(FILES ${EMIX_INSTALL_FILES}/emix.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
# emix-mpi.pc: libemix_mpi and the MPI emix was built with. Where that MPI has a .pc file of its
# own (Open MPI's ompi-c, MPICH's mpich, Debian's mpi-c alias), emix-mpi requires it by name, so
# that a cluster's MPI module (its PKG_CONFIG_PATH) supplies its folders rather than this machine's;
# otherwise its include folders and libraries are written in.
if(EMIX_HAS_MPI)
  set(EMIX_PC_MPI_REQUIRES "")
  set(EMIX_PC_MPI_CFLAGS "")
  set(EMIX_PC_MPI_LIBS "")
  find_program(EMIX_PKG_CONFIG_EXECUTABLE pkg-config)
  set(emix_mpi_library_dir "")
  if(MPI_C_LIBRARIES)  # empty where the compiler wrapper links MPI itself (Cray)
    list(GET MPI_C_LIBRARIES 0 emix_mpi_library)
    get_filename_component(emix_mpi_library_dir "${emix_mpi_library}" DIRECTORY)
  endif()
  foreach(module ompi-c mpich mpi-c)
    if(EMIX_PC_MPI_REQUIRES OR NOT EMIX_PKG_CONFIG_EXECUTABLE OR NOT emix_mpi_library_dir)
      break()
    endif()
    execute_process(COMMAND ${EMIX_PKG_CONFIG_EXECUTABLE} --variable=libdir ${module}
                    OUTPUT_VARIABLE module_libdir OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE module_missing ERROR_QUIET)
    if(NOT module_missing AND module_libdir)
      get_filename_component(module_libdir "${module_libdir}" REALPATH)
      get_filename_component(built_libdir "${emix_mpi_library_dir}" REALPATH)
      if(module_libdir STREQUAL built_libdir)
        set(EMIX_PC_MPI_REQUIRES ", ${module}")
      endif()
    endif()
  endforeach()
  if(NOT EMIX_PC_MPI_REQUIRES)
    foreach(dir ${MPI_C_INCLUDE_DIRS})
      string(APPEND EMIX_PC_MPI_CFLAGS " -I${dir}")
    endforeach()
    foreach(lib ${MPI_C_LIBRARIES})
      string(APPEND EMIX_PC_MPI_LIBS " ${lib}")
    endforeach()
  endif()
  configure_file(cmake/emix-mpi.pc.in ${EMIX_INSTALL_FILES}/emix-mpi.pc @ONLY)
  install(FILES ${EMIX_INSTALL_FILES}/emix-mpi.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()
