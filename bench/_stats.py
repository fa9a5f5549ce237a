"""Small helpers shared by the benchmarks: medians and spreads."""

import statistics


def summary(values, unit, fmt="{:,.1f}"):
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return f"median {fmt.format(med)} {unit} (min {fmt.format(lo)}, max {fmt.format(hi)}, n={len(values)})"
