// la.h — the constants and tensor order of the linear-attention mixer, shared by its CPU form (la.c)
// and its device form (cuda/la.cu). Depends on nothing.
#pragma once
#define LA_EPS 1e-12  // denominator eps (zoology's Based)
enum { LA_WQ, LA_WK, LA_WV, LA_WO, LA_NT };  // param_specs order
