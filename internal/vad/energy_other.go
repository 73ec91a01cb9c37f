//go:build !amd64 || purego

package vad

const useSIMD = false

func sumSquaresAVX2(b []byte) int64 { return sumSquaresGo(b) }

func sumSquaresStereoAVX2(b []byte) (left, right int64) { return sumSquaresStereoGo(b) }
