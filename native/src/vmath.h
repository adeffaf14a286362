// Lets GCC vectorise expf/logf/erff/tanhf/... loops with glibc's libmvec (AVX2/AVX-512 variants).
// glibc's math.h only declares the SIMD variants under __FAST_MATH__, which -fno-finite-math-only (kept so NaN and
// Inf behave) turns off; so they are declared here. Linked with -lmvec.
#pragma once
#include <cmath>

extern "C" {
#define DINOTS_SIMD __attribute__((__simd__("notinbranch"), __nothrow__, __leaf__, __const__))
float expf(float) DINOTS_SIMD;
float logf(float) DINOTS_SIMD;
float erff(float) DINOTS_SIMD;
float tanhf(float) DINOTS_SIMD;
float log1pf(float) DINOTS_SIMD;
float expm1f(float) DINOTS_SIMD;
float powf(float, float) DINOTS_SIMD;
#undef DINOTS_SIMD
}
