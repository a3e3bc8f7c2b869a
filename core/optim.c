/* optim.c — fused optimizer updates: one call updates one parameter and its state
 * in place in a single pass (SGD, Adam/AdamW, RMSprop, Adagrad), following the
 * arithmetic of torch.optim's single-tensor implementations step for step. */
#include "internal.h"

#include <math.h>

/* param, grad and every given state tensor: one device, contiguous, one float dtype and shape. */
static int check_args(const char *op, const kbl_tensor *param, const kbl_tensor *grad, int nstate,
                      const kbl_tensor *const *state, const char *const *names) {
    if (kbl_check_dev(op, param, "parameter") || kbl_check_dev(op, grad, "gradient") ||
        kbl_check_same_device(op, param, grad))
        return -1;
    if (kbl_check_float(op, param)) return -1;
    char a[96], b[96];
    if (grad->dtype != param->dtype || !kbl_same_shape(grad, param))
        return kbl_fail("%s: gradient %s does not match parameter %s", op, kbl_describe(grad, a, 96),
                        kbl_describe(param, b, 96));
    if (!kbl_is_contiguous(param) || !kbl_is_contiguous(grad))
        return kbl_fail("%s: parameter %s and its gradient must be contiguous", op, KBL_DESC(param));
    for (int i = 0; i < nstate; i++) {
        const kbl_tensor *s = state[i];
        if (!s) continue;
        if (kbl_check_dev(op, s, names[i]) || kbl_check_same_device(op, param, s)) return -1;
        if (s->dtype != param->dtype || !kbl_same_shape(s, param) || !kbl_is_contiguous(s))
            return kbl_fail("%s: state '%s' %s must be a contiguous tensor like the parameter %s", op,
                            names[i], kbl_describe(s, a, 96), kbl_describe(param, b, 96));
        if (kbl_same_storage(s, param) || kbl_same_storage(s, grad))
            return kbl_fail("%s: state '%s' shares storage with the parameter or its gradient", op, names[i]);
    }
    return 0;
}

typedef kbl_optim_update update;   /* backend.h: every backend's kernels take it */

/* The update of param by kind, on its device's fused kernel. */
static int apply(int kind, const kbl_tensor *param, const update *u) {
    return kbl_numel(param) ? kbl_backend_of(param)->optim_step(kind, param->dtype, kbl_numel(param), u) : 0;
}

/* ---- SGD ----------------------------------------------------------------------
 * d = g + wd*p; with momentum: buf = d on the first step, else buf = m*buf + (1-damp)*d;
 * d = nesterov ? d + m*buf : buf; then p -= lr*d.
 * mode: 0 no momentum, 1 first momentum step, 2 momentum, 3 first nesterov, 4 nesterov. */

int kbl_sgd_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *mbuf, double lr, double momentum,
                 double dampening, double weight_decay, int nesterov, int first_step) {
    const kbl_tensor *st[1] = {mbuf};
    const char *names[1] = {"momentum_buffer"};
    if (check_args("sgd_step", param, grad, 1, st, names)) return -1;
    if (momentum != 0 && !mbuf) return kbl_fail("sgd_step: momentum %g needs a momentum buffer", momentum);
    if (nesterov && (momentum <= 0 || dampening != 0))
        return kbl_fail("sgd_step: nesterov needs a positive momentum and zero dampening (got %g, %g)",
                        momentum, dampening);
    int mode = momentum == 0 ? 0 : (nesterov ? 3 : 1) + (first_step ? 0 : 1);
    update u = {kbl_base(param), kbl_base(grad), mode ? kbl_base(mbuf) : NULL, NULL, NULL,
                lr, momentum, dampening, 0, 0, 0, weight_decay, mode};
    return apply(KBL_OPTIM_SGD, param, &u);
}

/* ---- Adam and AdamW ----------------------------------------------------------
 * Adam: g += wd*p. AdamW (decoupled, mode 1): p *= 1 - lr*wd. Then m = b1*m + (1-b1)*g,
 * v = b2*v + (1-b2)*g*g, (amsgrad: vmax = max(vmax, v), used for v below),
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * One loop serves both: decay is 1 for Adam (exact) and wd is 0 for AdamW.
 * c0, c1: the betas; c2: sqrt(1 - b2^t); c3: the step size lr / (1 - b1^t). */

int kbl_adam_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *exp_avg, kbl_tensor *exp_avg_sq,
                  kbl_tensor *max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                  double weight_decay, int64_t step, int decoupled) {
    const char *op = decoupled ? "adamw_step" : "adam_step";
    const kbl_tensor *st[3] = {exp_avg, exp_avg_sq, max_exp_avg_sq};
    const char *names[3] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    if (check_args(op, param, grad, 3, st, names)) return -1;
    if (!exp_avg || !exp_avg_sq) return kbl_fail("%s: exp_avg and exp_avg_sq are required", op);
    if (step < 1) return kbl_fail("%s: step counts from 1, got %lld", op, (long long)step);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
        return kbl_fail("%s: betas must lie in [0, 1), got (%g, %g)", op, beta1, beta2);
    update u = {kbl_base(param), kbl_base(grad), kbl_base(exp_avg), kbl_base(exp_avg_sq),
                max_exp_avg_sq ? kbl_base(max_exp_avg_sq) : NULL, lr, beta1, beta2,
                sqrt(1 - pow(beta2, (double)step)), lr / (1 - pow(beta1, (double)step)), eps, weight_decay,
                decoupled != 0};
    return apply(KBL_OPTIM_ADAM, param, &u);
}

/* ---- RMSprop -----------------------------------------------------------------
 * g += wd*p; s = a*s + (1-a)*g*g; centered: ga = a*ga + (1-a)*g, avg = sqrt(s - ga*ga),
 * else avg = sqrt(s); avg += eps; momentum: buf = m*buf + g/avg, p -= lr*buf;
 * otherwise p -= lr * g/avg. c0: alpha; c1: momentum; s0, s1, s2: square_avg,
 * grad_avg, momentum_buffer (those in use). */

int kbl_rmsprop_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *square_avg, kbl_tensor *grad_avg,
                     kbl_tensor *mbuf, double lr, double alpha, double eps, double weight_decay,
                     double momentum) {
    const kbl_tensor *st[3] = {square_avg, grad_avg, mbuf};
    const char *names[3] = {"square_avg", "grad_avg", "momentum_buffer"};
    if (check_args("rmsprop_step", param, grad, 3, st, names)) return -1;
    if (!square_avg) return kbl_fail("rmsprop_step: square_avg is required");
    if (momentum > 0 && !mbuf) return kbl_fail("rmsprop_step: momentum %g needs a momentum buffer", momentum);
    update u = {kbl_base(param), kbl_base(grad), kbl_base(square_avg), grad_avg ? kbl_base(grad_avg) : NULL,
                momentum > 0 ? kbl_base(mbuf) : NULL, lr, alpha, momentum, 0, 0, eps, weight_decay, 0};
    return apply(KBL_OPTIM_RMSPROP, param, &u);
}

/* ---- Adagrad -----------------------------------------------------------------
 * g += wd*p; sum += g*g; p -= clr * g / (sqrt(sum) + eps), where the caller gives
 * clr = lr / (1 + (step-1)*lr_decay). */

int kbl_adagrad_step(kbl_tensor *param, kbl_tensor *grad, kbl_tensor *sum, double clr,
                     double weight_decay, double eps) {
    const kbl_tensor *st[1] = {sum};
    const char *names[1] = {"sum"};
    if (check_args("adagrad_step", param, grad, 1, st, names)) return -1;
    if (!sum) return kbl_fail("adagrad_step: the sum state is required");
    update u = {kbl_base(param), kbl_base(grad), kbl_base(sum), NULL, NULL, clr, 0, 0, 0, 0, eps,
                weight_decay, 0};
    return apply(KBL_OPTIM_ADAGRAD, param, &u);
}
