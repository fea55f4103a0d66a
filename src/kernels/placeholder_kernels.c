/* kernels layer */
typedef int ds_kernels_layer_placeholder;
