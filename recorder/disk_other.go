//go:build !linux

package recorder

import "errors"

// statFree cannot tell here: free space is unknown, and recordings are accepted. Use WithFreeSpace to
// enforce Config.MinFreeBytes on such a platform.
func statFree(string) (uint64, error) { return 0, errors.ErrUnsupported }
