# bench: the per-op profile hook (src/kernels/profile.c) and `dsocr bench` end to end on a
# tiny random checkpoint (made by `dsocr mkmodel --preset tiny`): JSON keys, positive
# numbers and the cost model; never a timing assertion. Runs the built dsocr binary.
ds_test(NAME test_bench SOURCES test_bench.c LAYERS core kernels TIMEOUT 120)
add_dependencies(test_bench dsocr)
