/* ocr layer */
typedef int ds_ocr_layer_placeholder;
