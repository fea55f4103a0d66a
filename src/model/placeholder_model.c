/* model layer */
typedef int ds_model_layer_placeholder;
