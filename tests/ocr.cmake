# ocr area: grounding parser and result.mmd rewrite (against the reference's own
# outputs), loop detector (crafted streams both ways), output directory, PDF input.
ds_test(NAME test_ocr_grounding SOURCES test_ocr_grounding.c LAYERS core ocr)
ds_test(NAME test_ocr_loop SOURCES test_ocr_loop.c LAYERS core ocr)
ds_test(NAME test_ocr_output SOURCES test_ocr_output.c LAYERS core ocr)
ds_test(NAME test_ocr_pdf SOURCES test_ocr_pdf.c LAYERS core image)
