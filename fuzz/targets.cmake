# The fuzz targets and the src/ layers each links: one list for both builds.
# fuzz/CMakeLists.txt (clang) makes libFuzzer executables from it; tests/fuzz.cmake
# (the normal build) makes corpus-replay tests. Target NAME is fuzz/fuzz_NAME.c with
# its seed corpus in fuzz/corpus/NAME.
ds_fuzz(NAME safetensors LAYERS core io)
ds_fuzz(NAME st_index LAYERS core io)
ds_fuzz(NAME config LAYERS core io)
ds_fuzz(NAME tokenizer_load LAYERS core io text)
ds_fuzz(NAME tokenizer_encode LAYERS core io text)
ds_fuzz(NAME image LAYERS core image)
ds_fuzz(NAME preprocess LAYERS core image)
ds_fuzz(NAME pdf LAYERS core image)
ds_fuzz(NAME pdf_pages LAYERS core image)
ds_fuzz(NAME grounding LAYERS core image ocr LIBS ${PCRE2_LIB})
ds_fuzz(NAME cli_options LAYERS core image ocr SOURCES ${DS_ROOT}/tools/cli.c)
ds_fuzz(NAME output LAYERS core image ocr)
