"""fastem: Gaussian mixture models fitted by EM on large data, fast, on the CPU."""
