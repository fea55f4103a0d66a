# Decode speed (src/kernels/cpu/cpu_linear_batch.c, the pool, the decoder's batched
# linears): built on demand (`--target bench_decode`), never run by ctest.
#   build/tests/bench_decode pool | gemv [MB] | decode MODEL_DIR [reps] [steps]
# The batched linear's correctness is tested in test_kernels_fast (kernels.cmake).
add_executable(bench_decode ${CMAKE_CURRENT_SOURCE_DIR}/bench_decode.c ${CMAKE_SOURCE_DIR}/src/model/decoder.c
               ${CMAKE_SOURCE_DIR}/src/model/quantize.c
               $<TARGET_OBJECTS:ds_core> $<TARGET_OBJECTS:ds_kernels> $<TARGET_OBJECTS:ds_io>)
target_include_directories(bench_decode PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_decode PRIVATE ${DS_DEPS})
set_target_properties(bench_decode PROPERTIES EXCLUDE_FROM_ALL ON)
