package apachetest

import (
	"sync"
	"syscall"
)

var subreaper sync.Once

// adoptOrphans makes this process the subreaper of its descendants, so Apache's workers, orphaned when
// Stop kills their parent, are reparented to us and reapGroup can reap them, rather than stay zombies under
// an init that does not reap (as in some containers).
func adoptOrphans() {
	subreaper.Do(func() {
		const prSetChildSubreaper = 36
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}

// reapGroup waits for every child of ours in process group pgid; it returns once none is left.
func reapGroup(pgid int) {
	for {
		_, err := syscall.Wait4(-pgid, nil, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD: none left
			return
		}
	}
}
