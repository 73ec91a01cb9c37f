//go:build !purego

#include "textflag.h"

// HSUM adds the four 64-bit lanes of Y (its low half is X; T is a scratch X register) into R.
#define HSUM(Y, X, T, R) \
	VEXTRACTI128 $1, Y, T \
	VPADDQ       T, X, X  \
	VPSHUFD      $0x4e, X, T \
	VPADDQ       T, X, X  \
	VMOVQ        X, R

// VPMADDWD multiplies 16-bit pairs and adds each pair's two products into a 32-bit lane. Two squares add up
// to at most 2^31 (both samples −32768), which fits the lane read as unsigned, so lanes are zero-extended to
// 64 bits (unpacked with a zero register) before they are summed.

// func sumSquaresAVX2(b []byte) int64
TEXT ·sumSquaresAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	SHRQ $6, CX
	VPXOR Y15, Y15, Y15 // zero
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	TESTQ CX, CX
	JZ    mono_sum

mono_loop:
	VMOVDQU    (SI), Y0
	VMOVDQU    32(SI), Y1
	VPMADDWD   Y0, Y0, Y0  // s0²+s1², s2²+s3², …
	VPMADDWD   Y1, Y1, Y1
	VPUNPCKLDQ Y15, Y0, Y2
	VPUNPCKHDQ Y15, Y0, Y3
	VPUNPCKLDQ Y15, Y1, Y4
	VPUNPCKHDQ Y15, Y1, Y5
	VPADDQ     Y2, Y8, Y8
	VPADDQ     Y3, Y9, Y9
	VPADDQ     Y4, Y8, Y8
	VPADDQ     Y5, Y9, Y9
	ADDQ       $64, SI
	DECQ       CX
	JNZ        mono_loop

mono_sum:
	VPADDQ Y9, Y8, Y8
	HSUM(Y8, X8, X9, AX)
	MOVQ   AX, ret+24(FP)
	VZEROUPPER
	RET

// Stereo frames are one 32-bit lane each, left sample low. Multiplying the frames by themselves with the
// right sample masked off gives left², by themselves gives left²+right²; right² is the difference. Each
// square is at most 2^30, so two blocks' lanes add up in 32 bits before they are widened.

// func sumSquaresStereoAVX2(b []byte) (left, right int64)
TEXT ·sumSquaresStereoAVX2(SB), NOSPLIT, $0-40
	MOVQ         b_base+0(FP), SI
	MOVQ         b_len+8(FP), CX
	SHRQ         $6, CX
	VPXOR        Y15, Y15, Y15 // zero
	VPCMPEQD     Y14, Y14, Y14
	VPSRLD       $16, Y14, Y14 // 0x0000ffff in each lane: the left sample
	VPXOR        Y8, Y8, Y8    // left
	VPXOR        Y9, Y9, Y9
	VPXOR        Y10, Y10, Y10 // right
	VPXOR        Y11, Y11, Y11
	TESTQ        CX, CX
	JZ           stereo_sum

stereo_loop:
	VMOVDQU    (SI), Y0
	VMOVDQU    32(SI), Y1
	VPAND      Y14, Y0, Y2
	VPAND      Y14, Y1, Y3
	VPMADDWD   Y0, Y2, Y2 // left²
	VPMADDWD   Y1, Y3, Y3
	VPMADDWD   Y0, Y0, Y0 // left²+right²
	VPMADDWD   Y1, Y1, Y1
	VPSUBD     Y2, Y0, Y0 // right²
	VPSUBD     Y3, Y1, Y1
	VPADDD     Y3, Y2, Y2 // both blocks: at most 2^31
	VPADDD     Y1, Y0, Y0
	VPUNPCKLDQ Y15, Y2, Y4
	VPUNPCKHDQ Y15, Y2, Y5
	VPUNPCKLDQ Y15, Y0, Y6
	VPUNPCKHDQ Y15, Y0, Y7
	VPADDQ     Y4, Y8, Y8
	VPADDQ     Y5, Y9, Y9
	VPADDQ     Y6, Y10, Y10
	VPADDQ     Y7, Y11, Y11
	ADDQ       $64, SI
	DECQ       CX
	JNZ        stereo_loop

stereo_sum:
	VPADDQ Y9, Y8, Y8
	HSUM(Y8, X8, X9, AX)
	MOVQ   AX, left+24(FP)
	VPADDQ Y11, Y10, Y10
	HSUM(Y10, X10, X11, AX)
	MOVQ   AX, right+32(FP)
	VZEROUPPER
	RET
