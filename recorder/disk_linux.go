package recorder

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statFree returns the bytes an unprivileged process may still write on the file system holding dir, as
// df reports them: available blocks times the fragment size (the block size where that is unset).
func statFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("recorder: statfs %s: %w", dir, err)
	}
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return st.Bavail * bs, nil
}
