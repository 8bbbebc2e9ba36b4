// test_state_sizes.c — known-answer recurrent state sizes through model_state_floats (models.md
// table; bytes = 4 x floats as zoology), step-cache sizes, and model_create's validation messages.
// Depends on model.h, mixcheck.h (check_report), the f32 models library.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "../models/model.h"
#include "mixcheck.h"

extern const MixerOps conv_ops, attention_ops, swa_ops;

static Model *make(const char *layers, int d, int heads, int T, char *err, size_t errn, int window, int fdim) {
    ModelCfg c;
    memset(&c, 0, sizeof c);
    c.vocab = 32; c.d_model = d; c.norm = NORM_LAYER;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", layers);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        MixerKind k;
        if (!mixer_find(tok, &k)) { snprintf(err, errn, "%s mixer not linked", tok); return NULL; }
        c.n_layers++;
    }
    int l = 0;
    snprintf(buf, sizeof buf, "%s", layers);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","), l++) {
        MixerKind k;
        mixer_find(tok, &k);
        mixer_cfg_default(&c.layer[l], k, d, heads, c.n_layers);
        if (window) for (int h = 0; h < RB_MAX_HEADS; h++) c.layer[l].window[h] = window;
        if (fdim) c.layer[l].feature_dim = fdim;
    }
    return model_create(&c, 1, T, err, errn);
}

static int expect(const char *label, const char *layers, int d, int heads, int T, int window, int fdim,
                  double want_floats) {
    char err[256] = "", lab[200];
    Model *m = make(layers, d, heads, T, err, sizeof err, window, fdim);
    if (!m) {
        snprintf(lab, sizeof lab, "%s: %s", label, err);
        return check_report(lab, INFINITY, 0);
    }
    double got = model_state_floats(m, T);
    snprintf(lab, sizeof lab, "%s = %.0f floats (%.0f bytes)", label, got, 4 * got);
    model_free(m);
    return check_report(lab, fabs(got - want_floats), 0);
}

static int expect_err(const char *label, ModelCfg *c, const char *want) {
    char err[256] = "", lab[300];
    Model *m = model_create(c, 2, 16, err, sizeof err);
    int ok = !m && strstr(err, want) != NULL;
    snprintf(lab, sizeof lab, "%s -> \"%s\"", label, err);
    model_free(m);
    return check_report(lab, ok ? 0 : 1, 0);
}

int main(void) {
    int fails = 0;
    fails += check_report("registry has conv, attention, swa",
                          mixer_ops(MIX_CONV) == &conv_ops && mixer_ops(MIX_ATTENTION) == &attention_ops &&
                          mixer_ops(MIX_SWA) == &swa_ops ? 0 : 1, 0);
    fails += expect("conv d64 (3*d)", "conv", 64, 1, 128, 0, 0, 192);
    fails += expect("attention d64 L128 (2*d*L)", "attention", 64, 1, 128, 0, 0, 16384);
    fails += expect("attention d64 h4 L512 (2*d*L)", "attention", 64, 4, 512, 0, 0, 65536);
    fails += expect("swa d64 W16 (2*W*d)", "swa", 64, 1, 128, 16, 0, 2048);
    fails += expect("swa d64 h2 W16 (2*W*d)", "swa", 64, 2, 128, 16, 0, 2048);
    fails += expect("conv,attention d64 L128", "conv,attention", 64, 1, 128, 0, 0, 192 + 16384);
    fails += expect("conv,swa d128 W64", "conv,swa", 128, 1, 256, 64, 0, 384 + 16384);
    // per-head windows: heads 2, W = 8, 32, d_h = 32: 2*8*32 + 2*32*32
    {
        ModelCfg c;
        memset(&c, 0, sizeof c);
        c.vocab = 32; c.d_model = 64; c.n_layers = 1;
        mixer_cfg_default(&c.layer[0], MIX_SWA, 64, 2, 1);
        c.layer[0].window[0] = 8; c.layer[0].window[1] = 32;
        char err[256];
        Model *m = model_create(&c, 1, 64, err, sizeof err);
        double got = m ? model_state_floats(m, 64) : INFINITY;
        fails += check_report("swa d64 h2 W8,32 = 2*(8+32)*32 = 2560 floats", fabs(got - 2560), 0);
        model_free(m);
    }
    fails += check_report("state formulas conv 3*d, attention 2*d*L, swa 2*W*d",
                          strcmp(conv_ops.state_formula, "3*d") || strcmp(attention_ops.state_formula, "2*d*L") ||
                          strcmp(swa_ops.state_formula, "2*W*d"), 0);
    // Step caches: conv keeps the last 2 inputs; swa a ring of W per head; attention Tmax rows.
    {
        MixerCfg c;
        Mixer mx;
        size_t got[3], want[3] = {2 * 64, 2 * 16 * 64, 2 * 100 * 64};
        MixerKind ks[3] = {MIX_CONV, MIX_SWA, MIX_ATTENTION};
        for (int i = 0; i < 3; i++) {
            mixer_cfg_default(&c, ks[i], 64, 2, 1);
            for (int h = 0; h < 2; h++) c.window[h] = 16;
            mixer_create(&mx, &c, 1, 100);
            got[i] = mx.ops->step_state_size(&mx);
            mixer_destroy(&mx);
        }
        fails += check_report("step caches conv 2d, swa 2Wd, attention 2 d Tmax",
                              (got[0] != want[0]) + (got[1] != want[1]) + (got[2] != want[2]), 0);
    }
    // The known answer: conv + la (taylor, f = 16, f' = 153), d 64 -> 40,548 bytes.
    if (!mixer_ops(MIX_LA) || !mixer_ops(MIX_LA)->state_floats) {
        printf("FAIL conv,la d64 f16 = 40548 bytes: la mixer not linked\n");
        fails++;
    } else {
        char err[256] = "";
        Model *m = make("conv,la", 64, 1, 128, err, sizeof err, 0, 16);
        double got = m ? 4 * model_state_floats(m, 128) : INFINITY;
        char lab[128];
        snprintf(lab, sizeof lab, "conv,la d64 f16 = 40548 bytes (got %.0f) %s", got, m ? "" : err);
        fails += check_report(lab, fabs(got - 40548), 0);
        model_free(m);
    }

    // Validation: one line naming the flag, the value and the allowed range.
    ModelCfg c;
    memset(&c, 0, sizeof c);
    c.vocab = 1; c.d_model = 64; c.n_layers = 1;
    mixer_cfg_default(&c.layer[0], MIX_ATTENTION, 64, 1, 1);
    fails += expect_err("vocab 1", &c, "--vocab 1 out of range: must be >= 2");
    c.vocab = 16;
    c.layer[0].heads = 3;
    fails += expect_err("heads 3, d 64", &c, "--heads 3 out of range: must divide --d-model 64");
    mixer_cfg_default(&c.layer[0], MIX_SWA, 64, 1, 1);
    c.layer[0].window[0] = 0;
    fails += expect_err("swa window 0", &c, "--window 0 out of range: must be >= 1");
    mixer_cfg_default(&c.layer[0], MIX_CONV, 64, 1, 1);
    c.pos_emb = 1; c.max_len = 8;
    fails += expect_err("pos-emb table 8 < seq-len 16", &c, "--seq-len 16 out of range");
    c.pos_emb = 0; c.n_layers = 0;
    fails += expect_err("no layers", &c, "--layers");

    printf("%s: %d state-size check(s) failed\n", fails ? "FAIL" : "PASS", fails);
    return fails ? 1 : 0;
}
