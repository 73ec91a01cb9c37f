/* Generates the reference vectors in this folder from libspandsp (Debian libspandsp-dev 0.0.6), an
 * independent G.722 implementation, so the Go package can be checked for bit-exactness against it:
 *
 *   apt-get install libspandsp-dev
 *   gcc -O2 -o /tmp/spandsp_ref spandsp_ref.c -lspandsp -lm && /tmp/spandsp_ref    (run in testdata/)
 *
 * in.pcm      8000 samples of 16 kHz s16le: a 100..7500 Hz chirp, full-scale noise, a clipping square
 *             wave, then silence
 * enc.g722    spandsp's encoding of in.pcm
 * rnd.g722    2000 pseudo-random bytes
 * dec_rnd.pcm spandsp's decoding of rnd.g722 (s16le). spandsp 0.0.6 casts the QMF output to int16, so it
 *             wraps where the Go decoder saturates.
 */
#include <stdio.h>
#include <stdint.h>
#include <math.h>
#include <spandsp.h>

#define N 8000
static uint32_t lcg = 12345;
static uint32_t next(void) { lcg = lcg*1103515245u + 12345u; return lcg >> 8; }
static void wr(const char *name, const void *p, size_t n) { FILE *f = fopen(name, "wb"); fwrite(p, 1, n, f); fclose(f); }

int main(void)
{
    static int16_t in[N], dec[4000];
    static uint8_t enc[N/2], rnd[2000];
    double ph = 0;
    int i;

    for (i = 0;  i < 4000;  i++)
    {
        ph += 2*M_PI*(100 + 7400.0*i/4000)/16000;
        in[i] = (int16_t) lrint(12000*sin(ph));
    }
    for (  ;  i < 6000;  i++)
        in[i] = (int16_t) (next() & 0xffff);
    for (  ;  i < 7000;  i++)
        in[i] = ((i/20) & 1)  ?  32767  :  -32768;
    for (  ;  i < N;  i++)
        in[i] = 0;
    for (i = 0;  i < 2000;  i++)
        rnd[i] = next() & 0xff;
    int ne = g722_encode(g722_encode_init(NULL, 64000, 0), enc, in, N);
    int nd = g722_decode(g722_decode_init(NULL, 64000, 0), dec, rnd, 2000);
    wr("in.pcm", in, sizeof(in));
    wr("enc.g722", enc, ne);
    wr("rnd.g722", rnd, sizeof(rnd));
    wr("dec_rnd.pcm", dec, nd*sizeof(int16_t));
    return 0;
}
