/**
 * The double-exponential synaptic kernel e^{−t/τd} − e^{−t/τr} of a unit-weight spike and what it is normalised by
 * ([simulation] kernel_normalisation): pure functions of the two time constants, used by the model constants and by
 * the schema's stability check.
 */

/** The double-exponential normaliser of the original, (τd/τr)^(τr/(τd−τr)) — exp(t_peak/τd), not the kernel peak. */
export function kernelNormaliser(tauRise: number, tauDecay: number): number {
  return Math.pow(tauDecay / tauRise, tauRise / (tauDecay - tauRise));
}

/**
 * The true peak of e^{−t/τd} − e^{−t/τr}, at t* = τr·τd·ln(τd/τr)/(τd − τr) (MODEL-HEAD.md 3): the normaliser under
 * simulation.kernel_normalisation = "peak", which makes g_bar the peak conductance of a unit-weight spike.
 */
export function kernelPeak(tauRise: number, tauDecay: number): number {
  const tPeak = (tauRise * tauDecay * Math.log(tauDecay / tauRise)) / (tauDecay - tauRise);
  return Math.exp(-tPeak / tauDecay) - Math.exp(-tPeak / tauRise);
}
