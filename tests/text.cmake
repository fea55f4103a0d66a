# Tokenizer and prompts (src/text, tools/cmd_tokenize.c).
ds_test(NAME test_text SOURCES test_text.c LAYERS core io text TIMEOUT 120)
ds_test(NAME test_text_cmd SOURCES test_text_cmd.c ${CMAKE_SOURCE_DIR}/tools/cmd_tokenize.c
        LAYERS core io text TIMEOUT 60)

# Helper for the node cross-check: reads JSON lines {"text": ...} on stdin and
# prints one JSON line per input with dsocr's ids and round-trip result.
function(ds_text_tool name src)
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/${src} $<TARGET_OBJECTS:ds_core> $<TARGET_OBJECTS:ds_io> $<TARGET_OBJECTS:ds_text>)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/common)
  target_link_libraries(${name} PRIVATE ${DS_DEPS})
endfunction()
ds_text_tool(test_text_jsonl test_text_jsonl.c)

# Cross-check against @lenml/tokenizers (transformers.js) on >= 10,000 generated
# strings. Needs `npm ci --prefix tests/node`; fails (not skips) without it.
add_test(NAME test_text_node_crosscheck
         COMMAND node ${CMAKE_CURRENT_SOURCE_DIR}/node/crosscheck.mjs
                 --bin $<TARGET_FILE:test_text_jsonl> --model ${DSOCR_GOLDEN_DIR}/tiny-model
         WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(test_text_node_crosscheck PROPERTIES TIMEOUT 300 LABELS node)

# Encode throughput on English and CJK text (MB/s): built on demand
# (`--target bench_text`), never run by ctest.
ds_text_tool(bench_text test_text_bench.c)
target_compile_definitions(bench_text PRIVATE DSOCR_GOLDEN_DIR="${DSOCR_GOLDEN_DIR}")
set_target_properties(bench_text PROPERTIES EXCLUDE_FROM_ALL ON)
