ds_test(NAME test_core SOURCES test_core.c LAYERS core)
