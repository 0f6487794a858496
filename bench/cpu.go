package bench

import "time"

// perUnit divides the CPU time a window used by the units it counted.
func perUnit(cpu time.Duration, units int64) time.Duration {
	if units <= 0 || cpu <= 0 {
		return 0
	}
	return cpu / time.Duration(units)
}
