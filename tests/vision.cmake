# Vision encoder (src/model/sam, clip, projector, vision).
# test_vision_units: binding, position tables, downsample projector, tile mosaic, errors.
# test_vision_golden[_MODE]: the 25 golden cases, one ctest per mode (test_vision_golden
# itself runs mode "tiny") so ctest -j can run them side by side. The executable takes
# case selectors (mode, image, image__mode, all); DSOCR_VISION_CASES="a,b" overrides them,
# e.g. under ASan: DSOCR_VISION_CASES=tiny,small_text_300x200__small,wide_banner_1600x500__gundam
ds_test(NAME test_vision_units SOURCES test_vision_units.c LAYERS core kernels io model TIMEOUT 120)
ds_test(NAME test_vision_golden SOURCES test_vision_golden.c LAYERS core kernels io image model
        TIMEOUT 600 ARGS tiny LABELS golden)
foreach(mode small base large gundam)
  add_test(NAME test_vision_golden_${mode} COMMAND test_vision_golden ${mode}
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(test_vision_golden_${mode} PROPERTIES TIMEOUT 600 LABELS golden)
endforeach()
