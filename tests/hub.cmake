# hub: model download into the Hugging Face cache, against a loopback hub server.
ds_test(NAME test_hub SOURCES test_hub.c test_hub_server.c LAYERS core io TIMEOUT 120)
