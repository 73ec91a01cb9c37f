//go:build !purego

package vad

import "golang.org/x/sys/cpu"

// useSIMD: every x86 server since 2013 (Haswell, Zen) has AVX2; without it the scalar loops run.
var useSIMD = cpu.X86.HasAVX2

// sumSquaresAVX2 is SumSquares for len(b) a multiple of simdBlock.
//
//go:noescape
func sumSquaresAVX2(b []byte) int64

// sumSquaresStereoAVX2 is SumSquaresStereo for len(b) a multiple of simdBlock.
//
//go:noescape
func sumSquaresStereoAVX2(b []byte) (left, right int64)
