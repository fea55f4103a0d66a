# Reliability: bad input through the real dsocr binary (broken checkpoints, configs,
# tokenizers, images, PDFs, prompts, output folders, full disk, Ctrl-C) and the
# memory guard's estimate against the real config numbers.
ds_test(NAME test_badinput SOURCES test_badinput.c LAYERS core ocr TIMEOUT 300)
set_tests_properties(test_badinput PROPERTIES LABELS "cli")
add_dependencies(test_badinput dsocr)
ds_test(NAME test_memory_guard SOURCES test_memory_guard.c LAYERS core kernels io text image model ocr app)
