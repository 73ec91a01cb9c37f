//go:build !linux

package apachetest

func adoptOrphans() {}

func reapGroup(int) {}
