// Package benchenv reads the settings that benchmarks take from the
// environment (a benchmark has no flags of its own), such as the log
// sizes a growth benchmark measures at. It imports nothing of Herald, so
// every package's benchmarks may use it.
package benchenv
