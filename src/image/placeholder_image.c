/* image layer */
typedef int ds_image_layer_placeholder;
