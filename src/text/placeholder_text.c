/* text layer */
typedef int ds_text_layer_placeholder;
