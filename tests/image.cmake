# Image input and preprocessing (src/image).
ds_test(NAME test_image_golden SOURCES test_image_golden.c LAYERS core image TIMEOUT 300)
ds_test(NAME test_image_preprocess SOURCES test_image_preprocess.c LAYERS core image TIMEOUT 120)
ds_test(NAME test_image_decode SOURCES test_image_decode.c LAYERS core image TIMEOUT 120)
