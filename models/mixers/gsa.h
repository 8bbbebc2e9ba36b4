// gsa.h — the constants and tensor order of the GSA mixer, shared by its CPU form (gsa.c) and its
// device form (cuda/gsa.cu) so both compute with the same values. Depends on nothing.
#pragma once
#define GSA_NORM_EPS 1e-6        // fla GSAConfig.norm_eps (passed to the layer's g_norm)
#define GSA_GATE_NORMALIZER 8.0  // fla gate_logit_normalizer: log alpha = logsigmoid(f) / 8
enum { GSA_WQ, GSA_WK, GSA_WV, GSA_WF, GSA_NORM, GSA_WO, GSA_NT };  // param_specs order
