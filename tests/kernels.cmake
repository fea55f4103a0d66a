# kernels: every op of src/kernels/ops.h against double-precision references (both the
# reference and the fast CPU backend), and the fast kernels against the reference ones
# on shapes that reach every fast path; also the thread pool (src/core/pool.c).
ds_test(NAME test_kernels SOURCES test_kernels.c LAYERS core kernels TIMEOUT 120)
ds_test(NAME test_kernels_fast SOURCES test_kernels_fast.c LAYERS core kernels TIMEOUT 120)
# the same on the kernels of smaller x86 CPUs (DSOCR_CPU caps the dispatch; the test
# checks that the cap took effect where the CPU has AVX2)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  foreach(cap avx2 generic)
    add_test(NAME test_kernels_fast_${cap} COMMAND test_kernels_fast WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(test_kernels_fast_${cap} PROPERTIES ENVIRONMENT DSOCR_CPU=${cap} TIMEOUT 120)
  endforeach()
endif()

# Kernel benchmark: built on demand (`--target bench_kernels`), never run by ctest.
#   build/tests/bench_kernels [threads] [linear|gemv|attention|conv|elementwise|openblas]
add_executable(bench_kernels ${CMAKE_CURRENT_SOURCE_DIR}/bench_kernels.c $<TARGET_OBJECTS:ds_core> $<TARGET_OBJECTS:ds_kernels>)
target_include_directories(bench_kernels PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_kernels PRIVATE ${DS_DEPS})
set_target_properties(bench_kernels PROPERTIES EXCLUDE_FROM_ALL ON)
