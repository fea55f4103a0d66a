/* io layer */
typedef int ds_io_layer_placeholder;
