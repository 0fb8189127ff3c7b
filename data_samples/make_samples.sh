#!/usr/bin/env bash
# Remake the shipped samples with the project's own simulation (deterministic for the seeds).
# Run from the repository root with alice-dyn installed: bash data_samples/make_samples.sh
set -euo pipefail
cd "$(dirname "$0")"
# pp: 10 timeframes x 8 collisions (dN/deta = 6.5 each, 500 kHz), B = 0.5 T
alice-dyn simulate -o pp_sample.root --timeframes 10 --system pp --seed 1 --run-period SIM-PP
# the same timeframes as O2 writes tpc-native-clusters.root (tpcrec: TPCClusterNative
# std::vector<char> + TPCClusterNativeSize + TPCClusterNativeMCTruth); needs ROOT (extra 'root')
alice-dyn simulate -o pp_sample_o2.root --timeframes 10 --system pp --seed 1 --layout o2 \
  --compression zstd:5
# Pb-Pb: 2 timeframes x 1 collision at 30-50% centrality (dN/deta = 1900 (1 - c)^2.6 = 500-315)
alice-dyn simulate -o pbpb_sample.root --timeframes 2 --collisions-per-tf 1 --system pbpb \
  --centrality 30-50 --seed 1 --run-period SIM-PBPB
