/* app layer */
typedef int ds_app_layer_placeholder;
