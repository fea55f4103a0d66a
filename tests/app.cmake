# End to end through the dsocr binary: parity against every golden fixture, and the
# OCR command on every golden image in every mode.
file(GLOB DS_GOLDEN_CASES ${DSOCR_GOLDEN_DIR}/cases/*.safetensors)
list(LENGTH DS_GOLDEN_CASES n_cases)
if(n_cases EQUAL 0)
  # Fail loudly (not skip) when the fixtures are missing.
  add_test(NAME golden_fixtures_present COMMAND ${CMAKE_COMMAND} -E false)
endif()
foreach(f ${DS_GOLDEN_CASES})
  get_filename_component(case ${f} NAME_WE)
  add_test(NAME parity_${case}
           COMMAND dsocr parity -q -t 1 -m ${DSOCR_GOLDEN_DIR}/tiny-model --fixture ${f})
  if(case MATCHES "__(large|gundam)$")
    set_tests_properties(parity_${case} PROPERTIES LABELS "golden;heavy")
  else()
    set_tests_properties(parity_${case} PROPERTIES LABELS "golden")
  endif()
endforeach()

foreach(img small_text_300x200 portrait_page_850x1100 wide_banner_1600x500 square_pattern_1300x1250 rgba_pattern_640x640)
  foreach(mode tiny small base large gundam)
    add_test(NAME ocr_${img}_${mode}
             COMMAND dsocr -t 1 -m ${DSOCR_GOLDEN_DIR}/tiny-model --mode ${mode} --max-tokens 16
                     ${DSOCR_GOLDEN_DIR}/images/${img}.png)
    if(mode MATCHES "large|gundam")
      set_tests_properties(ocr_${img}_${mode} PROPERTIES LABELS "cli;heavy")
    else()
      set_tests_properties(ocr_${img}_${mode} PROPERTIES LABELS "cli")
    endif()
  endforeach()
endforeach()

ds_test(NAME test_cli SOURCES test_cli.c LAYERS core TIMEOUT 600)
set_tests_properties(test_cli PROPERTIES LABELS "cli")
add_dependencies(test_cli dsocr)
