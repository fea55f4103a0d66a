ds_test(NAME test_safetensors SOURCES test_io_safetensors.c LAYERS core io)
ds_test(NAME test_checkpoint SOURCES test_io_checkpoint.c LAYERS core io)
ds_test(NAME test_config SOURCES test_io_config.c LAYERS core io)
