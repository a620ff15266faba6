/* The Gemmini timing model of sim/timing.py, ported to C.
 *
 * This file is a line-by-line port of sim/timing.py (read its module
 * docstring for the model): same state, same rules, same double arithmetic in
 * the same order, so every figure of the report is identical to the Python
 * model's. sim/timing_fast.py builds it (gcc -O2 -shared -fPIC
 * -ffp-contract=off: no fused multiply-adds, which would round differently
 * from Python) and loads it.
 *
 * Two ways in:
 *
 * tk_run(st, rec, n)   (ctypes; used when Python.h is missing)
 *     Processes n int64 words of trace records (pure C, no Python needed):
 *       TK_CPU     ops                        cpu(ops), integer ops
 *       TK_CPUF    bits                       cpu(ops), ops a double (its bit pattern)
 *       TK_FENCE                              fence()
 *       TK_FSM_BEGIN                          fsm_begin()
 *       TK_FSM_END                            fsm_end()
 *       TK_CMD     kind fsm bank_conflict dram_bytes rows nr nw
 *                  then nr (space, start, end) read ranges and
 *                  nw (space, start, end) write ranges
 *     kind is the model's op kind (1 preload, 2 compute, 3 config_ex,
 *     4 other execute, 5 mvin/mvin_acc, 6 mvin_zero, 7 config_ld / other load,
 *     8 mvout, 9 config_st / other store) or 0 for a CPU-only command
 *     ("flush"). Returns 0, or -1 on a malformed record (tk_error() says why;
 *     the records before it were applied).
 *
 * The Python extension module _timing_kernel (only when built with
 * -DTK_PYTHON and Python.h; the same shared library, imported by
 * sim/timing_fast.py): new(iparams, dparams) makes a Model whose command(),
 * cpu(), fence(), fsm_begin() and fsm_end() methods take exactly the
 * TimingModel arguments and run the model at once, so a call costs a C
 * function call instead of a Python one. snapshot() gives the raw figures.
 *
 * tk_new(iparams, dparams) / tk_free(st) / tk_snapshot(st, dout, iout) /
 * tk_error(st): see the functions.
 */
#ifdef TK_PYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define TK_VERSION 2

enum { TK_CPU = 0, TK_CPUF = 1, TK_FENCE = 2, TK_FSM_BEGIN = 3, TK_FSM_END = 4, TK_CMD = 5 };

/* op kinds (sim/timing.py _K_*) */
enum { K_NONE = 0, K_PRELOAD = 1, K_COMPUTE = 2, K_CONFIG_EX = 3, K_EX_OTHER = 4, K_MVIN = 5,
       K_MVIN_ZERO = 6, K_LD_OTHER = 7, K_MVOUT = 8, K_ST_OTHER = 9 };
static const int CLASS_OF[10] = {-1, 1, 1, 1, 1, 0, 0, 0, 2, 2};

/* iparams layout */
enum { IP_SP_ROWS, IP_ACC_ROWS, IP_RS_LOAD, IP_RS_EXEC, IP_RS_STORE, IP_N_SLOTS, IP_DIM, IP_BEAT,
       IP_MAX_REQ, IP_BANK_ROWS, IP_N };
/* dparams layout */
enum { DP_ROCC, DP_OP_CYCLES, DP_FSM_ISSUE, DP_FSM_SETUP, DP_FENCE_RT, DP_EXEC_RPC, DP_PRELOAD_CYCLES,
       DP_GARBAGE, DP_EXEC_LAT, DP_BANK_FACTOR, DP_CONFIG_EX, DP_CONFIG_UNIT, DP_DRAM_LAT, DP_REQ_OCC,
       DP_ST_PIPE, DP_ST_RPC, DP_ST_ACK, DP_N };

/* ---- the row scoreboard ----------------------------------------------------
 * As in sim/timing.py: per 16-row block, blk[k] = max over the block's rows;
 * fine[k] == 0 means every row of the block equals blk[k], else row[] holds
 * the 16 row values. */
typedef struct {
    int64_t nblk;
    double *blk;
    unsigned char *fine;
    double *row;
} Table;

static int table_init(Table *t, int64_t rows) {
    t->nblk = (rows + 15) >> 4;
    size_t n = (size_t)(t->nblk > 0 ? t->nblk : 1);
    t->blk = (double *)calloc(n, sizeof(double));
    t->fine = (unsigned char *)calloc(n, 1);
    t->row = (double *)calloc(n * 16, sizeof(double));
    return t->blk && t->fine && t->row;
}

static void table_free(Table *t) {
    free(t->blk);
    free(t->fine);
    free(t->row);
}

/* _qmax: max of rows [a, b) (b > a) */
static double qmax(const Table *t, int64_t a, int64_t b) {
    double m = 0.0;
    if (!(a & 15) && !(b & 15)) {
        for (int64_t k = a >> 4; k < (b >> 4); k++) {
            double v = t->blk[k];
            if (v > m) m = v;
        }
        return m;
    }
    int64_t k = a >> 4, kend = (b - 1) >> 4;
    for (; k <= kend; k++) {
        int64_t lo = k << 4, hi = lo + 16;
        double v;
        if (!t->fine[k] || (a <= lo && b >= hi)) {
            v = t->blk[k];
        } else {
            int64_t s = a > lo ? a - lo : 0, e = b < hi ? b - lo : 16;
            const double *f = t->row + (lo);
            /* Python: max(f[s:e]) */
            v = f[s];
            for (int64_t i = s + 1; i < e; i++)
                if (f[i] > v) v = f[i];
        }
        if (v > m) m = v;
    }
    return m;
}

/* _umax: rows [a, b) (b > a) become max(row, t) */
static void umax(Table *tb, int64_t a, int64_t b, double t) {
    if (!(a & 15) && !(b & 15)) {
        for (int64_t k = a >> 4; k < (b >> 4); k++) {
            if (t >= tb->blk[k]) {
                tb->blk[k] = t;
                tb->fine[k] = 0;
            } else if (tb->fine[k]) {
                double *f = tb->row + (k << 4);
                for (int i = 0; i < 16; i++)
                    if (!(f[i] > t)) f[i] = t;
            }
        }
        return;
    }
    int64_t k = a >> 4, kend = (b - 1) >> 4;
    for (; k <= kend; k++) {
        int64_t lo = k << 4, hi = lo + 16;
        double bv = tb->blk[k];
        double *f = tb->row + lo;
        if (a <= lo && b >= hi) {
            if (t >= bv) {
                tb->blk[k] = t;
                tb->fine[k] = 0;
            } else if (tb->fine[k]) {
                for (int i = 0; i < 16; i++)
                    if (!(f[i] > t)) f[i] = t;
            }
        } else {
            int64_t s = a > lo ? a - lo : 0, e = b < hi ? b - lo : 16;
            if (t > bv) {
                if (!tb->fine[k]) {
                    for (int i = 0; i < 16; i++) f[i] = bv;
                    tb->fine[k] = 1;
                }
                for (int64_t i = s; i < e; i++) f[i] = t;
                tb->blk[k] = t;
            } else if (tb->fine[k]) {
                for (int64_t i = s; i < e; i++)
                    if (f[i] < t) f[i] = t;
            }
        }
    }
}

/* the aligned one-block fast paths of sim/timing.py */
static inline double tget(const Table *t, int64_t a, int64_t b) {
    if (b - a == 16 && !(a & 15)) return t->blk[a >> 4];
    return qmax(t, a, b);
}

static inline void tset(Table *t, int64_t a, int64_t b, double v) {
    if (b - a == 16 && !(a & 15)) {
        int64_t k = a >> 4;
        if (v >= t->blk[k]) {
            t->blk[k] = v;
            t->fine[k] = 0;
            return;
        }
    }
    umax(t, a, b, v);
}

/* ---- the model state -------------------------------------------------------- */
typedef struct {
    /* parameters */
    double rocc, op_cycles, fsm_issue, fsm_setup, fence_rt, exec_rpc, preload_cycles, garbage_cycles,
        exec_lat, bank_factor, config_ex_cycles, config_unit, dram_lat, req_occ, st_pipe, st_rpc, st_ack;
    int64_t dim, beat, max_req, n_slots, bank_rows;
    /* scoreboard tables per space (0 scratchpad, 1 accumulator) */
    Table wld[2], wex[2], rd[2];
    /* CPU / RS */
    double cpu_t, cpu_busy, last_rs_in;
    double *heap[3];
    int64_t heap_n[3];
    int in_fsm;
    double fsm_next[3];
    /* load unit */
    double ld_req_free, ld_bus_free;
    double *ld_slots;
    int64_t ld_slot_i;
    /* execute unit */
    double pre_free, comp_start, comp_free, ex_land;
    uint64_t comp_banks; /* scratchpad banks the last compute reads (bit k = bank k % 64) */
    int64_t *pending_c; /* the C ranges of the last preload (triples) */
    int64_t pending_n, pending_cap;
    /* store unit */
    double st_free;
    /* accounting */
    double busy[3], busy_until[3], st_dep[3], st_issue[3], stall_rs, stall_fence, last_end;
    double bank_stall, cpu_ops;
    int64_t n_cmd[3], dram_rd, dram_wr, n_rocc;
    /* last error of tk_run */
    char err[200];
#ifdef TK_PYTHON
    int64_t *scratch;
    int64_t scratch_cap;
#endif
} State;

void tk_free(State *s) {
    if (!s) return;
    for (int i = 0; i < 2; i++) {
        table_free(&s->wld[i]);
        table_free(&s->wex[i]);
        table_free(&s->rd[i]);
    }
    for (int c = 0; c < 3; c++) free(s->heap[c]);
    free(s->ld_slots);
    free(s->pending_c);
#ifdef TK_PYTHON
    free(s->scratch);
#endif
    free(s);
}

int tk_version(void) { return TK_VERSION; }

int tk_has_python(void) {
#ifdef TK_PYTHON
    return 1;
#else
    return 0;
#endif
}

const char *tk_error(State *s) { return s->err; }

/* iparams[IP_N] and dparams[DP_N]; derived values (fsm_setup, preload_cycles,
 * req_occ, max(1, ...) sizes) are computed by the caller exactly as
 * sim/timing.py computes them. */
State *tk_new(const int64_t *ip, const double *dp) {
    State *s = (State *)calloc(1, sizeof(State));
    if (!s) return NULL;
    s->rocc = dp[DP_ROCC];
    s->op_cycles = dp[DP_OP_CYCLES];
    s->fsm_issue = dp[DP_FSM_ISSUE];
    s->fsm_setup = dp[DP_FSM_SETUP];
    s->fence_rt = dp[DP_FENCE_RT];
    s->exec_rpc = dp[DP_EXEC_RPC];
    s->preload_cycles = dp[DP_PRELOAD_CYCLES];
    s->garbage_cycles = dp[DP_GARBAGE];
    s->exec_lat = dp[DP_EXEC_LAT];
    s->bank_factor = dp[DP_BANK_FACTOR];
    s->config_ex_cycles = dp[DP_CONFIG_EX];
    s->config_unit = dp[DP_CONFIG_UNIT];
    s->dram_lat = dp[DP_DRAM_LAT];
    s->req_occ = dp[DP_REQ_OCC];
    s->st_pipe = dp[DP_ST_PIPE];
    s->st_rpc = dp[DP_ST_RPC];
    s->st_ack = dp[DP_ST_ACK];
    s->dim = ip[IP_DIM];
    s->beat = ip[IP_BEAT];
    s->max_req = ip[IP_MAX_REQ];
    s->n_slots = ip[IP_N_SLOTS] > 0 ? ip[IP_N_SLOTS] : 1;
    s->bank_rows = ip[IP_BANK_ROWS] > 0 ? ip[IP_BANK_ROWS] : 1;
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        int64_t rows = ip[i == 0 ? IP_SP_ROWS : IP_ACC_ROWS];
        ok &= table_init(&s->wld[i], rows);
        ok &= table_init(&s->wex[i], rows);
        ok &= table_init(&s->rd[i], rows);
    }
    for (int c = 0; c < 3; c++) {
        int64_t n = ip[IP_RS_LOAD + c];
        if (n < 1) n = 1;
        s->heap_n[c] = n;
        s->heap[c] = (double *)calloc((size_t)n, sizeof(double));
        ok &= s->heap[c] != NULL;
    }
    s->ld_slots = (double *)calloc((size_t)s->n_slots, sizeof(double));
    ok &= s->ld_slots != NULL;
    s->last_rs_in = -1.0;
    if (!ok) {
        tk_free(s);
        return NULL;
    }
    return s;
}

/* dout: cpu_t last_end cpu_busy busy[3] st_dep[3] st_issue[3] stall_rs stall_fence bank_stall
 *       cpu_ops (16)
 * iout: n_cmd[3] dram_rd dram_wr n_rocc (6) */
void tk_snapshot(const State *s, double *dout, int64_t *iout) {
    dout[0] = s->cpu_t;
    dout[1] = s->last_end;
    dout[2] = s->cpu_busy;
    for (int c = 0; c < 3; c++) {
        dout[3 + c] = s->busy[c];
        dout[6 + c] = s->st_dep[c];
        dout[9 + c] = s->st_issue[c];
        iout[c] = s->n_cmd[c];
    }
    dout[12] = s->stall_rs;
    dout[13] = s->stall_fence;
    dout[14] = s->bank_stall;
    dout[15] = s->cpu_ops;
    iout[3] = s->dram_rd;
    iout[4] = s->dram_wr;
    iout[5] = s->n_rocc;
}

/* heapq.heapreplace: pop the smallest, push x (a binary min-heap as in heapq;
 * only the smallest element is ever read, and the multiset is the same) */
static void heap_replace(double *h, int64_t n, double x) {
    /* heapq._siftup then _siftdown, as CPython does */
    int64_t pos = 0, start = 0, end = n;
    int64_t child = 2 * pos + 1;
    while (child < end) {
        int64_t right = child + 1;
        if (right < end && !(h[child] < h[right])) child = right;
        h[pos] = h[child];
        pos = child;
        child = 2 * pos + 1;
    }
    h[pos] = x;
    /* _siftdown(heap, startpos=0, pos) */
    double newitem = h[pos];
    while (pos > start) {
        int64_t parent = (pos - 1) >> 1;
        double p = h[parent];
        if (newitem < p) {
            h[pos] = p;
            pos = parent;
            continue;
        }
        break;
    }
    h[pos] = newitem;
}

/* Python's floor division for the ceil-divisions -(-x // y) */
static inline int64_t ceil_div(int64_t x, int64_t y) {
    int64_t n = -x;
    int64_t q = n / y, r = n % y;
    if (r != 0 && ((r < 0) != (y < 0))) q -= 1;
    return -q;
}

static void do_cpu(State *s, double c, int nonzero) {
    if (nonzero) {
        s->cpu_t += c;
        s->cpu_busy += c;
        s->cpu_ops += c;
        s->in_fsm = 0;
    }
}

static void do_fsm_begin(State *s) {
    s->cpu_t += s->fsm_setup;
    s->cpu_busy += s->fsm_setup;
    for (int c = 0; c < 3; c++)
        if (s->fsm_next[c] < s->cpu_t) s->fsm_next[c] = s->cpu_t;
    s->in_fsm = 1;
}

static void do_fence(State *s) {
    s->in_fsm = 0;
    double done = s->last_end > s->cpu_t ? s->last_end : s->cpu_t;
    s->stall_fence += done - s->cpu_t + s->fence_rt;
    s->cpu_t = done + s->fence_rt;
}

/* check that the ranges are in the tables (the Python model would raise or
 * misbehave on these; the functional machine never produces them) */
static int check_ranges(State *s, const int64_t *r, int64_t n) {
    for (int64_t i = 0; i < n; i++, r += 3) {
        int64_t sp = r[0], a = r[1], b = r[2];
        if (!(b > a)) continue; /* empty: never looked at */
        if (sp != 0 && sp != 1) {
            snprintf(s->err, sizeof s->err, "timing: space %lld is not 0 (scratchpad) or 1 (accumulator)",
                     (long long)sp);
            return -1;
        }
        if (a < 0 || b > s->wld[sp].nblk * 16) {
            snprintf(s->err, sizeof s->err, "timing: rows [%lld, %lld) are outside the %s",
                     (long long)a, (long long)b, sp ? "accumulator" : "scratchpad");
            return -1;
        }
    }
    return 0;
}

/* the scratchpad banks a list of (space, start, end) ranges touches */
static uint64_t bank_mask(const State *s, const int64_t *r, int64_t n) {
    uint64_t m = 0;
    for (int64_t i = 0; i < n; i++, r += 3) {
        if (r[0] != 0 || !(r[2] > r[1])) continue;
        for (int64_t k = r[1] / s->bank_rows, kend = (r[2] - 1) / s->bank_rows; k <= kend; k++)
            m |= (uint64_t)1 << (k & 63);
    }
    return m;
}

/* One command (the body of command() in sim/timing.py). reads / writes are
 * nr / nw (space, start, end) triples. */
static int do_command(State *s, int kind, int fsm, int bank_conflict, int64_t dram_bytes, int64_t rows,
                      const int64_t *reads, int64_t nr, const int64_t *writes, int64_t nw) {
    if (kind < 0 || kind > 9) {
        snprintf(s->err, sizeof s->err, "timing: bad op kind %d", kind);
        return -1;
    }
    if (kind == K_NONE) { /* flush and friends: CPU only */
        if (!fsm) {
            s->in_fsm = 0;
            s->cpu_t += s->rocc;
            s->cpu_busy += s->rocc;
        }
        return 0;
    }
    if (check_ranges(s, reads, nr) || check_ranges(s, writes, nw)) return -1;
    int cls = CLASS_OF[kind];

    /* ---- into the reservation station */
    double t;
    if (fsm) {
        if (!s->in_fsm) do_fsm_begin(s);
        t = s->fsm_next[cls];
    } else {
        s->in_fsm = 0;
        s->cpu_busy += s->rocc;
        s->n_rocc += 1;
        t = s->cpu_t + s->rocc;
        if (s->last_rs_in + 1.0 > t) t = s->last_rs_in + 1.0;
    }
    double *heap = s->heap[cls];
    double h = heap[0];
    if (h > t) {
        if (!fsm) s->stall_rs += h - t;
        t = h;
    }
    if (fsm)
        s->fsm_next[cls] = t + s->fsm_issue;
    else
        s->cpu_t = t;
    if (t > s->last_rs_in) s->last_rs_in = t;

    /* ---- dependencies and the unit's own availability */
    double dep = 0.0, avail, m, m2;
    int64_t nb = 0, nloc = 0;
    const int64_t *cw = NULL;
    int64_t ncw = 0;
    const int64_t *r;
    if (cls == 1) { /* execute */
        if (kind == K_COMPUTE) {
            r = reads;
            for (int64_t i = 0; i < nr; i++, r += 3) {
                if (!(r[2] > r[1])) continue;
                m = tget(&s->wld[r[0]], r[1], r[2]);
                if (m > dep) dep = m;
            }
            if (nw) {
                cw = writes;
                ncw = nw;
            } else {
                cw = s->pending_c;
                ncw = s->pending_n;
            }
            s->pending_n = 0; /* pending_c = (); cw keeps pointing at the buffer */
            r = cw;
            for (int64_t i = 0; i < ncw; i++, r += 3) {
                if (!(r[2] > r[1])) continue;
                m = tget(&s->wld[r[0]], r[1], r[2]);
                m2 = tget(&s->rd[r[0]], r[1], r[2]);
                if (m2 > m) m = m2;
                if (m > dep) dep = m;
            }
            avail = s->comp_free > s->pre_free ? s->comp_free : s->pre_free;
        } else if (kind == K_PRELOAD) {
            r = reads;
            for (int64_t i = 0; i < nr; i++, r += 3) {
                if (!(r[2] > r[1])) continue;
                m = tget(&s->wld[r[0]], r[1], r[2]);
                nb += r[2] - r[1];
                if (m > dep) dep = m;
            }
            /* pending_c = writes */
            if (nw > s->pending_cap) {
                int64_t cap = nw > 4 ? nw : 4;
                int64_t *p = (int64_t *)realloc(s->pending_c, (size_t)cap * 3 * sizeof(int64_t));
                if (!p) {
                    snprintf(s->err, sizeof s->err, "timing: out of memory");
                    return -1;
                }
                s->pending_c = p;
                s->pending_cap = cap;
            }
            if (nw) memcpy(s->pending_c, writes, (size_t)nw * 3 * sizeof(int64_t));
            s->pending_n = nw;
            avail = s->pre_free > s->comp_start ? s->pre_free : s->comp_start;
        } else if (kind == K_CONFIG_EX) {
            avail = s->ex_land;
            if (s->pre_free > avail) avail = s->pre_free;
            if (s->comp_free > avail) avail = s->comp_free;
        } else {
            avail = s->comp_free > s->pre_free ? s->comp_free : s->pre_free;
        }
    } else if (cls == 0) { /* load */
        if (kind != K_LD_OTHER) {
            r = writes;
            for (int64_t i = 0; i < nw; i++, r += 3) {
                if (!(r[2] > r[1])) continue;
                m = tget(&s->wex[r[0]], r[1], r[2]);
                m2 = tget(&s->rd[r[0]], r[1], r[2]);
                nloc += r[2] - r[1];
                if (m2 > m) m = m2;
                if (m > dep) dep = m;
            }
        }
        avail = s->ld_req_free;
        if (kind == K_MVIN) {
            double sl = s->ld_slots[s->ld_slot_i];
            if (sl > avail) avail = sl;
        }
    } else { /* store */
        if (kind == K_MVOUT) {
            r = reads;
            for (int64_t i = 0; i < nr; i++, r += 3) {
                if (!(r[2] > r[1])) continue;
                m = tget(&s->wex[r[0]], r[1], r[2]);
                m2 = tget(&s->wld[r[0]], r[1], r[2]);
                nloc += r[2] - r[1];
                if (m2 > m) m = m2;
                if (m > dep) dep = m;
            }
        }
        avail = s->st_free;
    }

    /* ---- start, with the unit's idle gap attributed to its cause */
    double start = avail;
    if (t > start || dep > start) {
        if (t >= dep) {
            s->st_issue[cls] += t - avail;
            start = t;
        } else {
            if (t > avail) {
                s->st_issue[cls] += t - avail;
                s->st_dep[cls] += dep - t;
            } else {
                s->st_dep[cls] += dep - avail;
            }
            start = dep;
        }
    }

    /* ---- the unit's work and the scoreboard updates (max-updates) */
    double end, retire;
    if (cls == 1) {
        if (kind == K_COMPUTE) {
            double cost = (double)(rows > 0 ? rows : s->dim) / s->exec_rpc;
            if (bank_conflict) {
                s->bank_stall += cost * s->bank_factor - cost;
                cost *= s->bank_factor;
            }
            end = start + cost;
            retire = end + s->exec_lat;
            s->comp_start = start;
            s->comp_free = end;
            s->comp_banks = bank_mask(s, reads, nr);
            if (retire > s->ex_land) s->ex_land = retire;
            r = reads;
            for (int64_t i = 0; i < nr; i++, r += 3)
                if (r[2] > r[1]) tset(&s->rd[r[0]], r[1], r[2], end);
            r = cw;
            for (int64_t i = 0; i < ncw; i++, r += 3)
                if (r[2] > r[1]) tset(&s->wex[r[0]], r[1], r[2], retire);
        } else if (kind == K_PRELOAD) {
            if (nb) {
                end = start + s->preload_cycles;
                if (s->comp_banks && s->comp_free > start && (bank_mask(s, reads, nr) & s->comp_banks)) {
                    /* B streams in while the previous compute still reads its A from
                     * the same scratchpad bank: the overlapped part costs bank_factor x */
                    double ov = s->comp_free - start;
                    if (ov > s->preload_cycles) ov = s->preload_cycles;
                    double x = (s->bank_factor - 1.0) * ov;
                    if (x > 0.0) {
                        end += x;
                        s->bank_stall += x;
                    }
                }
                r = reads;
                for (int64_t i = 0; i < nr; i++, r += 3)
                    if (r[2] > r[1]) tset(&s->rd[r[0]], r[1], r[2], end);
            } else {
                end = start + s->garbage_cycles;
            }
            s->pre_free = end;
            retire = end;
        } else {
            end = start + (kind == K_CONFIG_EX ? s->config_ex_cycles : s->config_unit);
            s->pre_free = s->comp_free = s->comp_start = end;
            s->comp_banks = 0;
            retire = end;
        }
    } else if (cls == 0) {
        if (kind == K_MVIN) {
            int64_t reqs = rows > 0 ? rows : 1;
            int64_t r2 = ceil_div(dram_bytes, s->max_req);
            if (r2 > reqs) reqs = r2;
            double ds = start + s->dram_lat;
            if (s->ld_bus_free > ds) ds = s->ld_bus_free;
            int64_t beats = ceil_div(dram_bytes, s->beat);
            end = ds + (double)beats;
            double e2 = start + (double)reqs + s->dram_lat;
            if (e2 > end) end = e2;
            s->ld_req_free = start + (double)reqs;
            double occ = (double)reqs * s->req_occ;
            s->ld_bus_free = occ > (double)beats ? ds + occ : end;
            s->ld_slots[s->ld_slot_i] = end;
            s->ld_slot_i += 1;
            if (s->ld_slot_i == s->n_slots) s->ld_slot_i = 0;
            s->dram_rd += dram_bytes;
        } else if (kind == K_MVIN_ZERO) {
            end = start + (double)(nloc ? nloc : (rows > 0 ? rows : 1));
            s->ld_req_free = end;
        } else {
            end = start + s->config_unit;
            s->ld_req_free = end;
        }
        if (kind != K_LD_OTHER) {
            r = writes;
            for (int64_t i = 0; i < nw; i++, r += 3)
                if (r[2] > r[1]) tset(&s->wld[r[0]], r[1], r[2], end);
        }
        retire = end;
    } else {
        if (kind == K_MVOUT) {
            double rc = (double)(nloc ? nloc : (rows > 0 ? rows : 1)) / s->st_rpc;
            int64_t beats = ceil_div(dram_bytes, s->beat);
            end = start + s->st_pipe + (rc > (double)beats ? rc : (double)beats);
            double read_done = end - s->st_pipe;
            if (start + rc > read_done) read_done = start + rc;
            s->st_free = end;
            r = reads;
            for (int64_t i = 0; i < nr; i++, r += 3)
                if (r[2] > r[1]) tset(&s->rd[r[0]], r[1], r[2], read_done);
            s->dram_wr += dram_bytes;
            retire = end + s->st_ack;
        } else {
            end = start + s->config_unit;
            s->st_free = end;
            retire = end;
        }
    }

    /* ---- accounting */
    double bu = s->busy_until[cls];
    if (end > bu) {
        s->busy[cls] += end - (start > bu ? start : bu);
        s->busy_until[cls] = end;
    }
    s->n_cmd[cls] += 1;
    heap_replace(heap, s->heap_n[cls], retire);
    if (retire > s->last_end) s->last_end = retire;
    return 0;
}

/* Test hooks: the row scoreboard alone. table 0 = load writes, 1 = execute
 * writes, 2 = reads; space 0 / 1. Returns -1 (and sets tk_error) on a bad
 * range, else 0; tk_table_qmax returns the max (0.0 for an empty range). */
static Table *hook_table(State *s, int table, int64_t sp, int64_t a, int64_t b) {
    int64_t r[3] = {sp, a, b};
    if (table < 0 || table > 2 || check_ranges(s, r, 1)) return NULL;
    return table == 0 ? &s->wld[sp] : table == 1 ? &s->wex[sp] : &s->rd[sp];
}

int tk_table_umax(State *s, int table, int64_t sp, int64_t a, int64_t b, double t) {
    if (!(b > a)) return 0;
    Table *tb = hook_table(s, table, sp, a, b);
    if (!tb) return -1;
    tset(tb, a, b, t);
    return 0;
}

double tk_table_qmax(State *s, int table, int64_t sp, int64_t a, int64_t b) {
    if (!(b > a)) return 0.0;
    Table *tb = hook_table(s, table, sp, a, b);
    if (!tb) return -1.0;
    return tget(tb, a, b);
}

int tk_run(State *s, const int64_t *rec, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        int64_t tag = rec[i];
        switch (tag) {
        case TK_CPU:
            if (i + 2 > n) goto truncated;
            do_cpu(s, (double)rec[i + 1] * s->op_cycles, rec[i + 1] != 0);
            i += 2;
            break;
        case TK_CPUF: {
            if (i + 2 > n) goto truncated;
            double ops;
            memcpy(&ops, &rec[i + 1], sizeof ops);
            do_cpu(s, ops * s->op_cycles, ops != 0.0);
            i += 2;
            break;
        }
        case TK_FENCE:
            do_fence(s);
            i += 1;
            break;
        case TK_FSM_BEGIN:
            do_fsm_begin(s);
            i += 1;
            break;
        case TK_FSM_END:
            s->in_fsm = 0;
            i += 1;
            break;
        case TK_CMD: {
            if (i + 8 > n) goto truncated;
            const int64_t *h = rec + i;
            int64_t nr = h[6], nw = h[7];
            if (nr < 0 || nw < 0 || i + 8 + 3 * (nr + nw) > n) goto truncated;
            if (do_command(s, (int)h[1], h[2] != 0, h[3] != 0, h[4], h[5], h + 8, nr, h + 8 + 3 * nr, nw))
                return -1;
            i += 8 + 3 * (nr + nw);
            break;
        }
        default:
            snprintf(s->err, sizeof s->err, "timing: bad record tag %lld at word %lld", (long long)tag,
                     (long long)i);
            return -1;
        }
    }
    return 0;
truncated:
    snprintf(s->err, sizeof s->err, "timing: truncated record at word %lld", (long long)i);
    return -1;
}

#ifdef TK_PYTHON
/* ---- the Python front end ----------------------------------------------------- */

static int op_kind(PyObject *op) {
    if (!PyUnicode_Check(op)) return -1;
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(op, &n);
    if (!p) {
        PyErr_Clear();
        return -1;
    }
    switch (n) {
    case 4:
        if (!memcmp(p, "mvin", 4)) return K_MVIN;
        break;
    case 5:
        if (!memcmp(p, "mvout", 5)) return K_MVOUT;
        break;
    case 7:
        if (!memcmp(p, "preload", 7)) return K_PRELOAD;
        break;
    case 8:
        if (!memcmp(p, "mvin_acc", 8)) return K_MVIN;
        break;
    case 9:
        if (!memcmp(p, "config_ex", 9)) return K_CONFIG_EX;
        if (!memcmp(p, "mvin_zero", 9)) return K_MVIN_ZERO;
        if (!memcmp(p, "config_ld", 9)) return K_LD_OTHER;
        if (!memcmp(p, "config_st", 9)) return K_ST_OTHER;
        break;
    case 17:
        if (!memcmp(p, "compute_preloaded", 17)) return K_COMPUTE;
        break;
    case 19:
        if (!memcmp(p, "compute_accumulated", 19)) return K_COMPUTE;
        break;
    }
    return -1;
}

/* the kind of an op the model does not know, from its unit */
static int unit_kind(PyObject *unit) {
    if (!PyUnicode_Check(unit)) return K_NONE;
    if (PyUnicode_CompareWithASCIIString(unit, "load") == 0) return K_LD_OTHER;
    if (PyUnicode_CompareWithASCIIString(unit, "execute") == 0) return K_EX_OTHER;
    if (PyUnicode_CompareWithASCIIString(unit, "store") == 0) return K_ST_OTHER;
    return K_NONE;
}

static inline int as_i64(PyObject *o, int64_t *out) {
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = (int64_t)v;
    return 0;
}

static inline int truth(PyObject *o) {
    if (o == Py_False || o == Py_None) return 0;
    if (o == Py_True) return 1;
    return PyObject_IsTrue(o);
}

static int64_t *scratch(State *s, int64_t n) {
    if (n > s->scratch_cap || !s->scratch) {
        int64_t cap = n < 64 ? 64 : 2 * n;
        int64_t *p = (int64_t *)realloc(s->scratch, (size_t)cap * sizeof(int64_t));
        if (!p) {
            PyErr_NoMemory();
            return NULL;
        }
        s->scratch = p;
        s->scratch_cap = cap;
    }
    return s->scratch;
}

/* (space, start, end) triples of a sequence of ranges into out */
static int ranges(PyObject *seq, int64_t *out, Py_ssize_t n, PyObject **items) {
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *r = items[i];
        if (PyTuple_CheckExact(r) && PyTuple_GET_SIZE(r) == 3) {
            if (as_i64(PyTuple_GET_ITEM(r, 0), out) || as_i64(PyTuple_GET_ITEM(r, 1), out + 1) ||
                as_i64(PyTuple_GET_ITEM(r, 2), out + 2))
                return -1;
        } else {
            PyObject *f = PySequence_Fast(r, "timing: a range must be (space, start, end)");
            if (!f) return -1;
            if (PySequence_Fast_GET_SIZE(f) != 3) {
                Py_DECREF(f);
                PyErr_SetString(PyExc_ValueError, "timing: a range must be (space, start, end)");
                return -1;
            }
            PyObject **it = PySequence_Fast_ITEMS(f);
            int bad = as_i64(it[0], out) || as_i64(it[1], out + 1) || as_i64(it[2], out + 2);
            Py_DECREF(f);
            if (bad) return -1;
        }
        out += 3;
    }
    (void)seq;
    return 0;
}

/* cpu(ops) */
static int cpu_obj(State *s, PyObject *o) {
    if (PyLong_Check(o)) {
        int64_t ops;
        if (as_i64(o, &ops)) return -1;
        do_cpu(s, (double)ops * s->op_cycles, ops != 0);
        return 0;
    }
    if (PyFloat_Check(o)) {
        double ops = PyFloat_AS_DOUBLE(o);
        do_cpu(s, ops * s->op_cycles, ops != 0.0);
        return 0;
    }
    if (PyIndex_Check(o)) { /* numpy integers */
        PyObject *i = PyNumber_Index(o);
        if (!i) return -1;
        int64_t ops;
        int bad = as_i64(i, &ops);
        Py_DECREF(i);
        if (bad) return -1;
        do_cpu(s, (double)ops * s->op_cycles, ops != 0);
        return 0;
    }
    double ops = PyFloat_AsDouble(o);
    if (ops == -1.0 && PyErr_Occurred()) return -1;
    do_cpu(s, ops * s->op_cycles, ops != 0.0);
    return 0;
}

/* command(op, unit, reads, writes, dram_bytes, rows, cols, fsm, bank_conflict);
 * a[i] NULL = not given (its default) */
static int command_obj(State *s, PyObject *const *a) {
    int kind = op_kind(a[0]);
    if (kind < 0) kind = unit_kind(a[1]);
    int fsm = a[7] ? truth(a[7]) : 0;
    if (fsm < 0) return -1;
    if (kind == K_NONE) return do_command(s, K_NONE, fsm, 0, 0, 0, NULL, 0, NULL, 0);
    int bc = a[8] ? truth(a[8]) : 0;
    if (bc < 0) return -1;
    int64_t dram = 0, rows = 0;
    if ((a[4] && as_i64(a[4], &dram)) || (a[5] && as_i64(a[5], &rows))) return -1;
    PyObject *rd = a[2], *wr = a[3];
    PyObject *rdf = NULL, *wrf = NULL;
    PyObject **ri = NULL, **wi = NULL;
    Py_ssize_t nr = 0, nw = 0;
    if (!rd) {
    } else if (PyTuple_CheckExact(rd)) {
        nr = PyTuple_GET_SIZE(rd);
        ri = &PyTuple_GET_ITEM(rd, 0);
    } else {
        rdf = PySequence_Fast(rd, "timing: reads must be a sequence of (space, start, end) ranges");
        if (!rdf) return -1;
        nr = PySequence_Fast_GET_SIZE(rdf);
        ri = PySequence_Fast_ITEMS(rdf);
    }
    if (!wr) {
    } else if (PyTuple_CheckExact(wr)) {
        nw = PyTuple_GET_SIZE(wr);
        wi = &PyTuple_GET_ITEM(wr, 0);
    } else {
        wrf = PySequence_Fast(wr, "timing: writes must be a sequence of (space, start, end) ranges");
        if (!wrf) {
            Py_XDECREF(rdf);
            return -1;
        }
        nw = PySequence_Fast_GET_SIZE(wrf);
        wi = PySequence_Fast_ITEMS(wrf);
    }
    int64_t *buf = scratch(s, 3 * (int64_t)(nr + nw));
    int rc = -1;
    if (buf && !ranges(rd, buf, nr, ri) && !ranges(wr, buf + 3 * nr, nw, wi)) {
        rc = do_command(s, kind, fsm, bc, dram, rows, buf, nr, buf + 3 * nr, nw);
        if (rc) PyErr_SetString(PyExc_ValueError, s->err);
    }
    Py_XDECREF(rdf);
    Py_XDECREF(wrf);
    return rc;
}

/* ---- the extension type: the model's calls straight into C ---------------- */
typedef struct {
    PyObject_HEAD
    State *s;
} ModelObject;

static const char *const CMD_KW[9] = {"op", "unit", "reads", "writes", "dram_bytes", "rows", "cols", "fsm",
                                      "bank_conflict"};

static PyObject *model_command(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *a[9] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (nargs > 9) {
        PyErr_Format(PyExc_TypeError, "command() takes at most 9 arguments (%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) a[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t j = 0; j < nk; j++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, j);
            int k = 0;
            while (k < 9 && PyUnicode_CompareWithASCIIString(name, CMD_KW[k]) != 0) k++;
            if (k == 9) {
                PyErr_Format(PyExc_TypeError, "command() got an unexpected keyword argument '%U'", name);
                return NULL;
            }
            if (a[k]) {
                PyErr_Format(PyExc_TypeError, "command() got multiple values for argument '%s'", CMD_KW[k]);
                return NULL;
            }
            a[k] = args[nargs + j];
        }
    }
    if (!a[0] || !a[1]) {
        PyErr_SetString(PyExc_TypeError, "command() missing required argument 'op' or 'unit'");
        return NULL;
    }
    if (command_obj(self->s, a)) return NULL;
    Py_RETURN_NONE;
}

static PyObject *model_cpu(ModelObject *self, PyObject *ops) {
    if (cpu_obj(self->s, ops)) return NULL;
    Py_RETURN_NONE;
}

static PyObject *model_fence(ModelObject *self, PyObject *unused) {
    (void)unused;
    do_fence(self->s);
    Py_RETURN_NONE;
}

static PyObject *model_fsm_begin(ModelObject *self, PyObject *unused) {
    (void)unused;
    do_fsm_begin(self->s);
    Py_RETURN_NONE;
}

static PyObject *model_fsm_end(ModelObject *self, PyObject *unused) {
    (void)unused;
    self->s->in_fsm = 0;
    Py_RETURN_NONE;
}

/* (16 floats, 6 ints) as tk_snapshot */
static PyObject *model_snapshot(ModelObject *self, PyObject *unused) {
    (void)unused;
    double d[16];
    int64_t i[6];
    tk_snapshot(self->s, d, i);
    PyObject *t = PyTuple_New(22);
    if (!t) return NULL;
    for (int k = 0; k < 16; k++) {
        PyObject *v = PyFloat_FromDouble(d[k]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, k, v);
    }
    for (int k = 0; k < 6; k++) {
        PyObject *v = PyLong_FromLongLong(i[k]);
        if (!v) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, 16 + k, v);
    }
    return t;
}

/* the State's address, for the ctypes entry points (the scoreboard test hooks) */
static PyObject *model_address(ModelObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromVoidPtr(self->s);
}

static void model_dealloc(ModelObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    tk_free(self->s);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMethodDef model_methods[] = {
    {"command", (PyCFunction)(void (*)(void))model_command, METH_FASTCALL | METH_KEYWORDS,
     "command(op, unit, reads=(), writes=(), dram_bytes=0, rows=0, cols=0, fsm=False, bank_conflict=False)"},
    {"cpu", (PyCFunction)model_cpu, METH_O, "cpu(ops)"},
    {"fence", (PyCFunction)model_fence, METH_NOARGS, "fence()"},
    {"fsm_begin", (PyCFunction)model_fsm_begin, METH_NOARGS, "fsm_begin()"},
    {"fsm_end", (PyCFunction)model_fsm_end, METH_NOARGS, "fsm_end()"},
    {"snapshot", (PyCFunction)model_snapshot, METH_NOARGS, "the raw state figures"},
    {"address", (PyCFunction)model_address, METH_NOARGS, "the State's address"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot model_slots[] = {
    {Py_tp_dealloc, (void *)model_dealloc},
    {Py_tp_methods, model_methods},
    {Py_tp_doc, (void *)"The timing model's state (sim/timing_kernel.c); made by new()."},
    {0, NULL},
};

static PyType_Spec model_spec = {"_timing_kernel.Model", sizeof(ModelObject), 0,
                                 Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, model_slots};

/* new(iparams: bytes, dparams: bytes) -> Model  (the int64 / double arrays of tk_new) */
static PyObject *mod_new(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) ||
        PyBytes_GET_SIZE(args[0]) != IP_N * (Py_ssize_t)sizeof(int64_t) ||
        PyBytes_GET_SIZE(args[1]) != DP_N * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_TypeError, "new(iparams, dparams): the packed int64 / double parameter arrays");
        return NULL;
    }
    PyTypeObject **slot = (PyTypeObject **)PyModule_GetState(module);
    PyTypeObject *tp = slot ? *slot : NULL;
    if (!tp) {
        PyErr_SetString(PyExc_RuntimeError, "_timing_kernel: no Model type");
        return NULL;
    }
    int64_t ip[IP_N];
    double dp[DP_N];
    memcpy(ip, PyBytes_AS_STRING(args[0]), sizeof ip);
    memcpy(dp, PyBytes_AS_STRING(args[1]), sizeof dp);
    State *s = tk_new(ip, dp);
    if (!s) return PyErr_NoMemory();
    ModelObject *m = PyObject_New(ModelObject, tp);
    if (!m) {
        tk_free(s);
        return NULL;
    }
    m->s = s; /* (PyObject_New took the instance's reference to its heap type) */
    return (PyObject *)m;
}

static PyMethodDef mod_methods[] = {
    {"new", (PyCFunction)(void (*)(void))mod_new, METH_FASTCALL, "new(iparams, dparams) -> Model"},
    {NULL, NULL, 0, NULL},
};

static int mod_exec(PyObject *module) {
    PyObject *tp = PyType_FromSpec(&model_spec);
    if (!tp) return -1;
    *(PyObject **)PyModule_GetState(module) = tp;
    if (PyModule_AddObjectRef(module, "Model", tp) < 0) return -1;
    return PyModule_AddIntConstant(module, "VERSION", TK_VERSION);
}

static int mod_traverse(PyObject *module, visitproc visit, void *arg) {
    PyObject **st = (PyObject **)PyModule_GetState(module);
    if (st) Py_VISIT(*st);
    return 0;
}

static int mod_clear(PyObject *module) {
    PyObject **st = (PyObject **)PyModule_GetState(module);
    if (st) Py_CLEAR(*st);
    return 0;
}

static PyModuleDef_Slot mod_slots[] = {{Py_mod_exec, (void *)mod_exec}, {0, NULL}};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT, "_timing_kernel", "The C timing model (sim/timing_kernel.c).", sizeof(PyObject *),
    mod_methods, mod_slots, mod_traverse, mod_clear, NULL,
};

PyMODINIT_FUNC PyInit__timing_kernel(void) { return PyModuleDef_Init(&mod_def); }
#endif
