# Vision encoder (src/model/sam, clip, projector, vision).
# Golden: one ctest per mode so ctest -j can run them side by side; the executable takes
# case selectors as arguments (or DSOCR_VISION_CASES, e.g. a subset under ASan).
ds_test(NAME test_vision_units SOURCES test_vision_units.c LAYERS core kernels io model TIMEOUT 120)
ds_test(NAME test_vision_golden SOURCES test_vision_golden.c LAYERS core kernels io image model
        TIMEOUT 600 ARGS tiny)
set_tests_properties(test_vision_golden PROPERTIES LABELS golden)
foreach(mode small base large gundam)
  add_test(NAME test_vision_golden_${mode} COMMAND test_vision_golden ${mode}
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(test_vision_golden_${mode} PROPERTIES TIMEOUT 600 LABELS golden)
endforeach()
