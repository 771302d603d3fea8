#pragma once
// The q-quantile of sorted samples, interpolated linearly between the closest ranks (NumPy's
// default method). One definition for every exact percentile tidegate reports: bench's summary,
// the simulator's, and the per-bucket percentiles of common/report's charts. Pure.

#include <span>

namespace tidegate {

// REQUIRES: `sorted` ascending; q in [0, 1]. Empty input gives 0.
double quantile(std::span<const double> sorted, double q);

}  // namespace tidegate
