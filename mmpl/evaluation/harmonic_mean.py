"""The base-to-new summary metric (one implementation of the rule)."""


def harmonic_mean(base: float, new: float) -> float:
    """HM = 2 * B * N / (B + N), the base-to-new benchmark's summary
    (CoCoOp protocol); 0 when both accuracies are 0."""
    if base + new == 0:
        return 0.0
    return 2.0 * base * new / (base + new)
