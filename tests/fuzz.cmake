# Fuzz-corpus replay (fuzz/): every libFuzzer target is also built with the normal
# compiler around fuzz/replay_main.c and run over its committed corpus, seeds and
# crash regressions alike, so each build (and -DDSOCR_SANITIZE=ON) re-checks every
# input fuzzing ever found. The fuzzing itself is scripts/fuzz.sh (clang).
set(DS_ROOT ${CMAKE_SOURCE_DIR})
set(PCRE2_LIB "")
function(ds_fuzz)
  cmake_parse_arguments(F "" "NAME" "LAYERS;SOURCES;LIBS" ${ARGN})
  ds_test(NAME test_fuzz_${F_NAME}
          SOURCES ${CMAKE_SOURCE_DIR}/fuzz/fuzz_${F_NAME}.c ${CMAKE_SOURCE_DIR}/fuzz/replay_main.c ${F_SOURCES}
          LAYERS ${F_LAYERS}
          ARGS ${CMAKE_SOURCE_DIR}/fuzz/corpus/${F_NAME}
          TIMEOUT 120 LABELS fuzz)
  target_include_directories(test_fuzz_${F_NAME} PRIVATE ${CMAKE_SOURCE_DIR}/fuzz ${CMAKE_SOURCE_DIR}/tools)
endfunction()
include(${CMAKE_SOURCE_DIR}/fuzz/targets.cmake)
