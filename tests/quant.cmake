# quant: block-quantized weights (src/core/quant.c, src/kernels/cpu/cpu_quant.c,
# src/model/quantize.c): quantizers and ds_op_linear over Q8_0 / Q4_0 on both backends
# against double references of the dequantized weights; fidelity of the load-time
# quantized decoder against bf16 on all 25 golden cases of the tiny model.
ds_test(NAME test_quant SOURCES test_quant.c LAYERS core kernels TIMEOUT 120)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")   # the AVX2 and scalar paths too (DSOCR_CPU caps the dispatch)
  foreach(cap avx2 generic)
    add_test(NAME test_quant_${cap} COMMAND test_quant WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(test_quant_${cap} PROPERTIES ENVIRONMENT DSOCR_CPU=${cap} TIMEOUT 120)
  endforeach()
endif()
ds_test(NAME test_quant_model SOURCES test_quant_model.c ${CMAKE_SOURCE_DIR}/src/model/decoder.c
        ${CMAKE_SOURCE_DIR}/src/model/quantize.c LAYERS core kernels io TIMEOUT 300)

# Fidelity and speed on a full-size checkpoint: built on demand, never run by ctest.
#   build/tests/bench_quant MODEL_DIR [steps] [reps]
add_executable(bench_quant ${CMAKE_CURRENT_SOURCE_DIR}/bench_quant.c ${CMAKE_SOURCE_DIR}/src/model/decoder.c
               ${CMAKE_SOURCE_DIR}/src/model/quantize.c
               $<TARGET_OBJECTS:ds_core> $<TARGET_OBJECTS:ds_kernels> $<TARGET_OBJECTS:ds_io>)
target_include_directories(bench_quant PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(bench_quant PRIVATE ${DS_DEPS})
set_target_properties(bench_quant PROPERTIES EXCLUDE_FROM_ALL ON)
