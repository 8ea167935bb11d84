"""Budget: prune a model until it fits flash / RAM / latency limits, losing the least accuracy.

`limits` parses a budget ("96KB", "50%", "20ms") once into one `Budget` (flash_bytes,
ram_bytes, latency_ms) and resolves it once against the original; `predictor` predicts the
int8 size, arena and MACs from channel counts; `sensitivity` measures how much each channel
group can lose; `joint` measures per-layer TFLM PRUNE/LUT compression moves; `allocation`
chooses counts (and compression moves) that meet the budget; `search` runs the job (`original`
holds the original model's facts it computes first, which a sweep computes once) and
proves the result on the exported artifact; `sweep` repeats it over budgets x boards x seeds
(`sweep_point` is one point, `sweep_backends` runs them: serially, in local processes or on Ray).
It does not implement pruning methods itself (it uses `tinyprune.prune.structured`).
"""
