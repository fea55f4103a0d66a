# Decoder, n-gram bans, sampler and generation (src/model/decoder.c, ngram.c, generate.c).
# The model sources are compiled in directly so that other model files cannot break these tests.
set(DS_DECODER_SRCS ${CMAKE_SOURCE_DIR}/src/model/decoder.c ${CMAKE_SOURCE_DIR}/src/model/ngram.c
    ${CMAKE_SOURCE_DIR}/src/model/generate.c)
ds_test(NAME test_decoder_ngram SOURCES test_decoder_ngram.c ${CMAKE_SOURCE_DIR}/src/model/ngram.c
        LAYERS core TIMEOUT 60)
ds_test(NAME test_decoder_sampler SOURCES test_decoder_sampler.c ${DS_DECODER_SRCS}
        LAYERS core kernels io TIMEOUT 60)
ds_test(NAME test_decoder SOURCES test_decoder.c ${DS_DECODER_SRCS}
        LAYERS core kernels io TIMEOUT 300)
