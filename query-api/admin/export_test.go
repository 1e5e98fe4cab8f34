package admin

// SetMaxFile lowers the largest archive file r proves, for tests.
func SetMaxFile(r *Restorer, n int64) { r.maxFile = n }
