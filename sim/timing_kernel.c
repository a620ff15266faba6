/* The Gemmini timing model of sim/timing.py, ported to C.
 *
 * This file is a line-by-line port of sim/timing.py (read its module
 * docstring for the model): same state, same rules, same double arithmetic in
 * the same order, so every figure of the report is identical to the Python
 * model's. Each function below names the TimingModel method it ports.
 * sim/timing_fast.py builds it (gcc -O2 -shared -fPIC -ffp-contract=off: no
 * fused multiply-adds, which would round differently from Python) and loads it.
 *
 * The Python model's unbounded containers are growable here: the memory
 * calendar (16-cycle buckets) and the FSM's used-cycle set (a bitmap) grow
 * with the simulated time; range lists grow with the command. The bounded ones
 * (RS entries, IDs, TLB, the 8 recent windows) have the config's sizes.
 *
 * Two ways in:
 *
 * tk_run(st, rec, n)   (ctypes; used when Python.h is missing)
 *     Processes n int64 words of trace records (pure C, no Python needed):
 *       TK_CPU     cycles                     cpu(cycles), an integer
 *       TK_CPUF    bits                       cpu(cycles), a double (its bit pattern)
 *       TK_FENCE                              fence()
 *       TK_FSM_BEGIN                          fsm_begin()
 *       TK_FSM_END                            fsm_end()
 *       TK_CMD     kind fsm flags dram_bytes rows cols dram_addr dram_stride nr nw
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
 * function call instead of a Python one. finish() is TimingModel._finish_time,
 * now() the CPU time, snapshot() the raw state (tk_snapshot).
 *
 * tk_new(iparams, dparams) / tk_free(st) / tk_finish(st) / tk_snapshot_size /
 * tk_snapshot(st, dout, iout) / tk_error(st): see the functions.
 */
#ifdef TK_PYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TK_VERSION 3

enum { TK_CPU = 0, TK_CPUF = 1, TK_FENCE = 2, TK_FSM_BEGIN = 3, TK_FSM_END = 4, TK_CMD = 5 };
#define TK_CMD_HEADER 11

/* op kinds (sim/timing.py _K_*) */
enum { K_NONE = 0, K_PRELOAD = 1, K_COMPUTE = 2, K_CONFIG_EX = 3, K_EX_OTHER = 4, K_MVIN = 5,
       K_MVIN_ZERO = 6, K_LD_OTHER = 7, K_MVOUT = 8, K_ST_OTHER = 9 };
enum { C_LOAD = 0, C_EXEC = 1, C_STORE = 2 };
static const int CLASS_OF[10] = {-1, C_EXEC, C_EXEC, C_EXEC, C_EXEC, C_LOAD, C_LOAD, C_LOAD, C_STORE, C_STORE};

/* command(flags=...) bits (sim/timing.py FLAG_*) */
#define FLAG_SCALED 1
#define FLAG_ACCUMULATE 2
#define FLAG_RAW 4

#define BUCKET 16      /* _BUCKET */
#define PAGE_SHIFT 12  /* _PAGE_SHIFT */
#define WINDOWS 8      /* _WINDOWS */
#define RUNS_KEPT 4    /* fsm_begin keeps the newest 4 runs */
#define CLIENT_WRITER 0
#define CLIENT_READER 1

/* the four scoreboard tables */
enum { T_LDW = 0, T_EXR = 1, T_EXC = 2, T_STR = 3, T_N = 4 };

/* iparams layout: integers the model uses as integers (sizes already max(1, n)
 * where sim/timing.py takes max(1, n)) */
enum { IP_SP_ROWS, IP_ACC_ROWS, IP_RS_LOAD, IP_RS_EXEC, IP_RS_STORE, IP_FE_SLACK, IP_MVINS, IP_READ_IDS,
       IP_WRITE_IDS, IP_TLB, IP_LOOPS, IP_DIM, IP_BEAT, IP_MAX_REQ, IP_SP_BANK_ROWS, IP_ACC_BANK_ROWS,
       IP_ACC_BANKS, IP_EXEC_MIN_ROWS, IP_MVOUT_BUF, IP_N };
/* dparams layout: float(cfg.x) of the fields sim/timing.py uses as floats */
enum { DP_ROCC, DP_REPLAY, DP_FE_LAT, DP_RS_ISSUE, DP_LD_Q, DP_EX_Q, DP_ST_Q, DP_MVIN_REQ, DP_MVIN_WRITE,
       DP_MVIN_RELEASE, DP_MVIN_SCALED, DP_ZERO_FILL, DP_MVOUT_READ, DP_MVOUT_PUT, DP_MEM_READ, DP_MEM_WRITE,
       DP_MEM_BW, DP_TLB_MISS, DP_EXEC_RESULT, DP_ACC_COMMIT, DP_CONFIG_EX, DP_FENCE_TAIL, DP_FSM_SETUP, DP_N };

/* Python's floor division and modulo (the model only sees non-negative
 * operands from the machine, but keep Python's meaning) */
static inline int64_t py_div(int64_t x, int64_t y) {
    int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) q -= 1;
    return q;
}
static inline int64_t py_mod(int64_t x, int64_t y) {
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return r;
}
/* math.floor / math.ceil of a double as an integer (no libm: |x| < 2**63) */
static inline int64_t ifloor(double x) {
    int64_t q = (int64_t)x;
    return (double)q > x ? q - 1 : q;
}
static inline int64_t iceil(double x) {
    int64_t q = (int64_t)x;
    return (double)q < x ? q + 1 : q;
}
/* -(-x // y) */
static inline int64_t ceil_div(int64_t x, int64_t y) { return -py_div(-x, y); }

/* ---- the row scoreboard ----------------------------------------------------
 * As _qmax / _umax in sim/timing.py: per 16-row block, blk[k] = max over the
 * block's rows; fine[k] == 0 means every row of the block equals blk[k]
 * (Python's None), else row[16k..16k+15] holds the 16 row values. */
typedef struct {
    int64_t nblk;
    double *blk;
    unsigned char *fine;
    double *row;
} Table;

static int table_init(Table *t, int64_t rows) {
    t->nblk = (rows + 15) >> 4;
    if (t->nblk < 0) t->nblk = 0;
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

/* _qmax: max of rows [a, b), 0.0 if empty */
static double qmax(const Table *t, int64_t a, int64_t b) {
    double m = 0.0;
    if (b <= a) return m;
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
            const double *f = t->row + lo;
            v = f[s]; /* max(f[s:e]) */
            for (int64_t i = s + 1; i < e; i++)
                if (f[i] > v) v = f[i];
        }
        if (v > m) m = v;
    }
    return m;
}

/* _umax: rows [a, b) become max(row, t) */
static void umax(Table *tb, int64_t a, int64_t b, double t) {
    if (b <= a) return;
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
                for (int i = 0; i < 16; i++) /* [x if x > t else t for x in f] */
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

/* ---- growable containers ------------------------------------------------------ */
/* a list of (space, start, end) triples */
typedef struct {
    int64_t n, cap;
    int64_t *v;
} Rng;

/* a sparse array indexed by any int64 (the calendar dict keyed by bucket,
 * the set of used FSM cycles): pages of PG_N elements, zero where never
 * written, in an open-addressing hash map keyed by page number */
#define PG_SHIFT 10
#define PG_N ((int64_t)1 << PG_SHIFT)
typedef struct {
    int64_t key;
    char *data; /* NULL: empty slot */
} PSlot;
typedef struct {
    PSlot *slots;
    int64_t cap, n; /* cap: a power of two */
    size_t elt;
    int64_t last_key;
    char *last; /* the page found last */
} PMap;

/* a window ring: the newest WINDOWS entries of a Python list (append, then
 * del w[0] past WINDOWS), oldest first */
typedef struct {
    double a, b, c;
} Win;
typedef struct {
    int start, n;
    Win w[WINDOWS];
} Ring;

static inline Win *ring_at(Ring *r, int i) { return &r->w[(r->start + i) % WINDOWS]; }
static inline Win *ring_push(Ring *r) {
    Win *w;
    if (r->n < WINDOWS) {
        w = &r->w[(r->start + r->n) % WINDOWS];
        r->n++;
    } else {
        w = &r->w[r->start];
        r->start = (r->start + 1) % WINDOWS;
    }
    return w;
}

/* a recent execute operation (ex_ops): (start, end, scratchpad banks) */
typedef struct {
    double s, e;
    int64_t nb, cap;
    int64_t *banks;
} ExOp;

/* a queued execute command (pending): (kind, slot, arrival, held, reads, writes, rows, flags) */
typedef struct {
    int kind, held;
    int64_t slot, rows, flags;
    double arrival;
    Rng reads, writes;
} Cmd;

#define PEND_MAX 4 /* the execute queue holds at most 3 unfired commands (see ex_execute) */

/* ---- the model state (TimingModel.__init__) ---------------------------------------- */
typedef struct {
    /* parameters */
    int64_t sp_rows, acc_rows, n_rs[3], fe_n, n_slots, n_rids, n_wids, tlb_n, loops, dim, beat, max_req,
        sp_bank_rows, acc_bank_rows, acc_banks, exec_min_rows, mvout_buf, n_sp_banks;
    double rocc, replay, fe_lat, rs_issue_lat, q_lat[3], mvin_req_lat, mvin_write_lat, mvin_release,
        mvin_scaled, zero_fill, mvout_read_lat, mvout_put_lat, mem_read_lat, mem_write_lat, bw, cap, tlb_miss,
        exec_result_lat, acc_commit, config_ex_cycles, fence_tail, fsm_setup;
    /* CPU and command path */
    double cpu_t, cpu_busy, cpu_scalar, stall_rs, stall_fence;
    int64_t n_rocc;
    double *fe_ring;
    int64_t fe_i;
    double last_alloc;
    double *rs[3];
    double last_issue[3];
    double store_release, last_end;
    /* scoreboard: tab[table][space] */
    Table tab[T_N][2];
    /* execute unit */
    double ex_free, ex_drain;
    Cmd cmds[PEND_MAX];
    Cmd *pend[PEND_MAX]; /* pend[0 .. pend_n) is the queue; the rest are free */
    int pend_n;
    int wp_has; /* wait_pre */
    int64_t wp_slot, wp_flags;
    double wp_fed;
    Rng wp_reads, wp_writes;
    int lp_has; /* last_pre */
    int64_t lp_flags;
    Rng lp_writes;
    ExOp ex_ops[WINDOWS];
    int ops_start, ops_n;
    double bank_stall;
    /* load unit */
    double ld_free, get_free, row_w; /* row_w: the last row write of the shared mvin write path */
    double *ld_slots, *rids;
    Ring *sp_writes; /* per scratchpad bank */
    /* store unit */
    double wr_free, last_ack;
    double *wids;
    Ring *acc_windows; /* per accumulator bank */
    /* memory and TLB */
    PMap cal;
    int64_t *tlb;
    int64_t tlb_len, tlb_last[2];
    /* FSM */
    int in_fsm;
    double fsm_next[3];
    PMap fsm_used; /* bitmap, 64 cycles a word */
    double fsm_last_issue, run_start, run_ld, run_ex;
    double runs[RUNS_KEPT + 1];
    int runs_n;
    /* accounting */
    double busy[3], busy_until[3], st_dep[3], st_issue[3];
    int64_t n_cmd[3], dram_rd, dram_wr;
    /* scratch */
    int64_t *banks;
    int64_t banks_cap;
    int oom;
    char err[200];
#ifdef TK_PYTHON
    int64_t *scratch;
    int64_t scratch_cap;
#endif
} State;

static void rng_set(State *st, Rng *r, const int64_t *src, int64_t n) {
    if (n > r->cap) {
        int64_t cap = n < 4 ? 4 : 2 * n;
        int64_t *p = (int64_t *)realloc(r->v, (size_t)cap * 3 * sizeof(int64_t));
        if (!p) {
            st->oom = 1;
            r->n = 0;
            return;
        }
        r->v = p;
        r->cap = cap;
    }
    if (n) memcpy(r->v, src, (size_t)n * 3 * sizeof(int64_t));
    r->n = n;
}

static inline uint64_t pm_hash(int64_t key, int64_t cap) {
    return ((uint64_t)key * 0x9E3779B97F4A7C15ull) >> 17 & (uint64_t)(cap - 1);
}

/* the page `key`, or NULL if never made */
static char *pm_find(PMap *m, int64_t key) {
    if (m->last && m->last_key == key) return m->last;
    if (!m->cap) return NULL;
    for (uint64_t h = pm_hash(key, m->cap);; h = (h + 1) & (uint64_t)(m->cap - 1)) {
        PSlot *sl = &m->slots[h];
        if (!sl->data) return NULL;
        if (sl->key == key) {
            m->last_key = key;
            m->last = sl->data;
            return sl->data;
        }
    }
}

static void pm_insert(PSlot *slots, int64_t cap, int64_t key, char *data) {
    uint64_t h = pm_hash(key, cap);
    while (slots[h].data) h = (h + 1) & (uint64_t)(cap - 1);
    slots[h].key = key;
    slots[h].data = data;
}

/* the page `key`, made (zeroed) if new; NULL when out of memory */
static char *pm_get(PMap *m, int64_t key) {
    char *d = pm_find(m, key);
    if (d) return d;
    if (2 * (m->n + 1) > m->cap) {
        int64_t cap = m->cap ? 2 * m->cap : 64;
        PSlot *ns = (PSlot *)calloc((size_t)cap, sizeof(PSlot));
        if (!ns) return NULL;
        for (int64_t i = 0; i < m->cap; i++)
            if (m->slots[i].data) pm_insert(ns, cap, m->slots[i].key, m->slots[i].data);
        free(m->slots);
        m->slots = ns;
        m->cap = cap;
    }
    d = (char *)calloc((size_t)PG_N, m->elt);
    if (!d) return NULL;
    pm_insert(m->slots, m->cap, key, d);
    m->n++;
    m->last_key = key;
    m->last = d;
    return d;
}

static void pm_free(PMap *m) {
    for (int64_t i = 0; i < m->cap; i++) free(m->slots[i].data);
    free(m->slots);
}

void tk_free(State *s) {
    if (!s) return;
    for (int t = 0; t < T_N; t++)
        for (int i = 0; i < 2; i++) table_free(&s->tab[t][i]);
    free(s->fe_ring);
    for (int c = 0; c < 3; c++) free(s->rs[c]);
    for (int i = 0; i < PEND_MAX; i++) {
        free(s->cmds[i].reads.v);
        free(s->cmds[i].writes.v);
    }
    free(s->wp_reads.v);
    free(s->wp_writes.v);
    free(s->lp_writes.v);
    for (int i = 0; i < WINDOWS; i++) free(s->ex_ops[i].banks);
    free(s->ld_slots);
    free(s->rids);
    free(s->sp_writes);
    free(s->wids);
    free(s->acc_windows);
    pm_free(&s->cal);
    free(s->tlb);
    pm_free(&s->fsm_used);
    free(s->banks);
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

static double *zeros(int64_t n, int *ok) {
    double *p = (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) *ok = 0;
    return p;
}

/* iparams[IP_N] and dparams[DP_N] (sim/timing_fast.py _params). Returns NULL
 * when out of memory or the parameters are unusable (sizes < 1, a beat wider
 * than the largest request, memory bandwidth <= 0: the Python model would
 * divide by zero or loop forever on those). */
State *tk_new(const int64_t *ip, const double *dp) {
    for (int i = IP_RS_LOAD; i <= IP_ACC_BANKS; i++)
        if (ip[i] < 1) return NULL;
    if (ip[IP_BEAT] > ip[IP_MAX_REQ] || ip[IP_MVOUT_BUF] < 0 || ip[IP_SP_ROWS] < 0 || ip[IP_ACC_ROWS] < 0)
        return NULL;
    if (!(dp[DP_MEM_BW] > 0.0) || !(dp[DP_MEM_BW] * BUCKET < INFINITY)) return NULL;
    State *s = (State *)calloc(1, sizeof(State));
    if (!s) return NULL;
    s->n_rs[0] = ip[IP_RS_LOAD];
    s->n_rs[1] = ip[IP_RS_EXEC];
    s->n_rs[2] = ip[IP_RS_STORE];
    s->fe_n = ip[IP_FE_SLACK];
    s->n_slots = ip[IP_MVINS];
    s->n_rids = ip[IP_READ_IDS];
    s->n_wids = ip[IP_WRITE_IDS];
    s->tlb_n = ip[IP_TLB];
    s->loops = ip[IP_LOOPS];
    s->dim = ip[IP_DIM];
    s->beat = ip[IP_BEAT];
    s->max_req = ip[IP_MAX_REQ];
    s->sp_bank_rows = ip[IP_SP_BANK_ROWS];
    s->acc_bank_rows = ip[IP_ACC_BANK_ROWS];
    s->acc_banks = ip[IP_ACC_BANKS];
    s->exec_min_rows = ip[IP_EXEC_MIN_ROWS];
    s->mvout_buf = ip[IP_MVOUT_BUF];
    s->rocc = dp[DP_ROCC];
    s->replay = dp[DP_REPLAY];
    s->fe_lat = dp[DP_FE_LAT];
    s->rs_issue_lat = dp[DP_RS_ISSUE];
    s->q_lat[C_LOAD] = dp[DP_LD_Q];
    s->q_lat[C_EXEC] = dp[DP_EX_Q];
    s->q_lat[C_STORE] = dp[DP_ST_Q];
    s->mvin_req_lat = dp[DP_MVIN_REQ];
    s->mvin_write_lat = dp[DP_MVIN_WRITE];
    s->mvin_release = dp[DP_MVIN_RELEASE];
    s->mvin_scaled = dp[DP_MVIN_SCALED];
    s->zero_fill = dp[DP_ZERO_FILL];
    s->mvout_read_lat = dp[DP_MVOUT_READ];
    s->mvout_put_lat = dp[DP_MVOUT_PUT];
    s->mem_read_lat = dp[DP_MEM_READ];
    s->mem_write_lat = dp[DP_MEM_WRITE];
    s->bw = dp[DP_MEM_BW];
    s->cap = s->bw * BUCKET; /* bw * _BUCKET */
    s->tlb_miss = dp[DP_TLB_MISS];
    s->exec_result_lat = dp[DP_EXEC_RESULT];
    s->acc_commit = dp[DP_ACC_COMMIT];
    s->config_ex_cycles = dp[DP_CONFIG_EX];
    s->fence_tail = dp[DP_FENCE_TAIL];
    s->fsm_setup = dp[DP_FSM_SETUP];
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        int64_t rows = ip[i == 0 ? IP_SP_ROWS : IP_ACC_ROWS];
        for (int t = 0; t < T_N; t++) ok &= table_init(&s->tab[t][i], rows);
    }
    s->sp_rows = s->tab[0][0].nblk * 16;
    s->acc_rows = s->tab[0][1].nblk * 16;
    s->n_sp_banks = s->sp_rows > 0 ? (s->sp_rows - 1) / s->sp_bank_rows + 1 : 1;
    s->fe_ring = zeros(s->fe_n, &ok);
    for (int c = 0; c < 3; c++) s->rs[c] = zeros(s->n_rs[c], &ok);
    s->last_alloc = -1.0;
    s->row_w = -INFINITY;
    for (int c = 0; c < 3; c++) s->last_issue[c] = -1.0;
    for (int i = 0; i < PEND_MAX; i++) s->pend[i] = &s->cmds[i];
    s->ld_slots = zeros(s->n_slots, &ok);
    s->rids = zeros(s->n_rids, &ok);
    s->wids = zeros(s->n_wids, &ok);
    s->sp_writes = (Ring *)calloc((size_t)s->n_sp_banks, sizeof(Ring));
    s->acc_windows = (Ring *)calloc((size_t)s->acc_banks, sizeof(Ring));
    s->tlb = (int64_t *)calloc((size_t)s->tlb_n + 1, sizeof(int64_t));
    ok &= s->sp_writes && s->acc_windows && s->tlb;
    s->tlb_last[0] = s->tlb_last[1] = -1;
    s->cal.elt = sizeof(double);
    s->fsm_used.elt = sizeof(uint64_t);
    if (!ok) {
        tk_free(s);
        return NULL;
    }
    return s;
}

/* ---- RS bookkeeping ---------------------------------------------------------------- */
static inline double dmin(const double *v, int64_t n) {
    double m = v[0];
    for (int64_t i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

/* the index of the first minimum (list.index(min(list))) */
static inline int64_t argmin(const double *v, int64_t n) {
    int64_t k = 0;
    double m = v[0];
    for (int64_t i = 1; i < n; i++)
        if (v[i] < m) {
            m = v[i];
            k = i;
        }
    return k;
}

/* _rs_slot_time */
static inline double rs_slot_time(State *s, int cls, double t) {
    double m = dmin(s->rs[cls], s->n_rs[cls]);
    return m > t ? m : t;
}

/* _release */
static inline void rs_release(State *s, int cls, int64_t slot, double t) {
    s->rs[cls][slot] = t;
    if (cls == C_STORE && t > s->store_release) s->store_release = t;
    if (t > s->last_end) s->last_end = t;
}

/* _account */
static inline void account(State *s, int cls, double free, double arrival, int held, double start, double end) {
    if (arrival > free) {
        if (held)
            s->st_dep[cls] += arrival - free;
        else
            s->st_issue[cls] += arrival - free;
    }
    double bu = s->busy_until[cls];
    if (end > bu) {
        s->busy[cls] += end - (start > bu ? start : bu);
        s->busy_until[cls] = end;
    }
    s->n_cmd[cls] += 1;
}

/* _Table.query / _Table.update */
static double tq(const State *s, int table, const int64_t *r, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++, r += 3) {
        if (!(r[2] > r[1])) continue; /* _qmax of an empty range: 0.0 */
        double v = qmax(&s->tab[table][r[0]], r[1], r[2]);
        if (v > m) m = v;
    }
    return m;
}

static void tu(State *s, int table, const int64_t *r, int64_t n, double t) {
    for (int64_t i = 0; i < n; i++, r += 3)
        if (r[2] > r[1]) umax(&s->tab[table][r[0]], r[1], r[2], t);
}

/* _hull: out holds at most max(n, 2) triples; returns the count */
static int64_t hull(const int64_t *r, int64_t n, int64_t *out) {
    if (n <= 1) {
        if (n == 1) memcpy(out, r, 3 * sizeof(int64_t));
        return n;
    }
    int have[2] = {0, 0};
    int64_t lo[2] = {0, 0}, hi[2] = {0, 0};
    for (int64_t i = 0; i < n; i++, r += 3) {
        int64_t sp = r[0], a = r[1], b = r[2];
        if (b <= a) continue;
        if (!have[sp]) {
            have[sp] = 1;
            lo[sp] = a;
            hi[sp] = b;
        } else {
            if (a < lo[sp]) lo[sp] = a;
            if (b > hi[sp]) hi[sp] = b;
        }
    }
    int64_t k = 0;
    for (int sp = 0; sp < 2; sp++)
        if (have[sp]) {
            out[3 * k] = sp;
            out[3 * k + 1] = lo[sp];
            out[3 * k + 2] = hi[sp];
            k++;
        }
    return k;
}

/* _touches */
static int touches(const int64_t *a, int64_t na, const int64_t *b, int64_t nb) {
    for (int64_t i = 0; i < na; i++)
        for (int64_t j = 0; j < nb; j++) {
            const int64_t *x = a + 3 * i, *y = b + 3 * j;
            if (x[0] == y[0] && x[1] < y[2] && y[1] < x[2]) return 1;
        }
    return 0;
}

/* ---- CPU ------------------------------------------------------------------------------ */
/* cpu(cycles): c is float(cycles); `if cycles:` is c != 0.0 */
static void do_cpu(State *s, double c) {
    if (c != 0.0) {
        s->cpu_t += c;
        s->cpu_busy += c;
        s->cpu_scalar += c;
        s->in_fsm = 0;
    }
}

/* _frontend */
static double frontend(State *s, int cls) {
    double rocc = s->rocc;
    double wb = s->cpu_t + rocc;
    s->cpu_busy += rocc;
    s->n_rocc += 1;
    int64_t k = s->fe_i;
    double older = s->fe_ring[k];
    if (older > wb) {
        double stalled = older + s->replay;
        s->stall_rs += stalled - wb;
        wb = stalled;
    }
    s->cpu_t = wb;
    double t = wb + s->fe_lat;
    if (s->last_alloc + 1.0 > t) t = s->last_alloc + 1.0;
    if (s->fsm_last_issue + 1.0 > t) t = s->fsm_last_issue + 1.0;
    t = rs_slot_time(s, cls, t);
    s->fe_ring[k] = t;
    s->fe_i = k + 1 < s->fe_n ? k + 1 : 0;
    s->last_alloc = t;
    return t;
}

/* ---- FSM --------------------------------------------------------------------------------- */
static void do_fsm_begin(State *s) {
    double setup = s->fsm_setup;
    s->cpu_t += setup;
    s->cpu_busy += setup;
    int64_t loops = s->loops;
    if (s->runs_n >= loops && s->runs[s->runs_n - loops] > s->cpu_t) {
        s->stall_rs += s->runs[s->runs_n - loops] - s->cpu_t;
        s->cpu_t = s->runs[s->runs_n - loops];
    }
    s->run_start = s->cpu_t + s->fe_lat;
    for (int c = 0; c < 3; c++)
        if (s->fsm_next[c] < s->run_start) s->fsm_next[c] = s->run_start;
    s->run_ld = s->run_ex = s->run_start;
    s->runs[s->runs_n++] = s->run_start;
    if (s->runs_n > RUNS_KEPT) {
        memmove(s->runs, s->runs + 1, (size_t)(s->runs_n - 1) * sizeof(double));
        s->runs_n--;
    }
    s->in_fsm = 1;
}

/* `while c in used: c += 1; used.add(c)` on the bitmap */
static int64_t fsm_claim(State *s, int64_t c) {
    PMap *m = &s->fsm_used;
    int64_t w = c >> 6; /* floor(c / 64) */
    int bit = (int)(c & 63);
    for (;;) {
        uint64_t *page = (uint64_t *)pm_get(m, w >> PG_SHIFT);
        if (!page) {
            s->oom = 1;
            return c;
        }
        for (int64_t k = w & (PG_N - 1); k < PG_N; k++, w++, bit = 0) {
            uint64_t x = page[k] | (bit ? (((uint64_t)1 << bit) - 1) : 0);
            if (~x) {
                int b = __builtin_ctzll(~x);
                page[k] |= (uint64_t)1 << b;
                return w * 64 + b;
            }
        }
    }
}

/* _fsm_alloc */
static double fsm_alloc(State *s, int cls) {
    double t = s->fsm_next[cls];
    if (cls == C_EXEC && s->run_ld > t)
        t = s->run_ld;
    else if (cls == C_STORE && s->run_ex > t)
        t = s->run_ex;
    t = rs_slot_time(s, cls, t);
    int64_t c = fsm_claim(s, iceil(t));
    t = (double)c;
    s->fsm_next[cls] = t + 1.0;
    if (cls == C_LOAD)
        s->run_ld = t;
    else if (cls == C_EXEC)
        s->run_ex = t;
    if (s->runs_n && t > s->runs[s->runs_n - 1]) s->runs[s->runs_n - 1] = t;
    if (t > s->fsm_last_issue) s->fsm_last_issue = t;
    return t + 1.0;
}

/* ---- memory, TLB ------------------------------------------------------------------------ */
/* _mem */
static double mem_xfer(State *s, double t, int64_t nbytes) {
    double bw = s->bw;
    double cap = s->cap;
    int64_t b = ifloor(t / (double)BUCKET); /* int(t // _BUCKET) */
    double rem = (double)nbytes;
    PMap *m = &s->cal;
    double u = 0.0;
    for (;;) {
        double *page = (double *)pm_find(m, b >> PG_SHIFT);
        u = page ? page[b & (PG_N - 1)] : 0.0; /* cal.get(b, 0.0) */
        double room = cap - u;
        if (room > 0.0) {
            double take = room < rem ? room : rem;
            u += take;
            if (!page && !(page = (double *)pm_get(m, b >> PG_SHIFT))) {
                s->oom = 1;
                break;
            }
            page[b & (PG_N - 1)] = u;
            rem -= take;
            if (rem <= 0.0) break;
        }
        b += 1;
    }
    double fin = (double)b * (double)BUCKET + u / bw;
    double link = t + (double)ceil_div(nbytes, s->beat);
    return fin > link ? fin : link;
}

/* _tlb */
static double tlb(State *s, int client, int64_t addr, double t) {
    int64_t page = addr >> PAGE_SHIFT;
    if (s->tlb_last[client] == page) return t;
    s->tlb_last[client] = page;
    int64_t *v = s->tlb;
    for (int64_t i = 0; i < s->tlb_len; i++)
        if (v[i] == page) {
            memmove(v + i, v + i + 1, (size_t)(s->tlb_len - 1 - i) * sizeof(int64_t));
            v[s->tlb_len - 1] = page;
            return t;
        }
    v[s->tlb_len++] = page;
    if (s->tlb_len > s->tlb_n) {
        memmove(v, v + 1, (size_t)(s->tlb_len - 1) * sizeof(int64_t));
        s->tlb_len--;
    }
    return t + s->tlb_miss;
}

/* _id: the first ID free earliest, and when the request gets it */
static inline int64_t take_id(const double *ids, int64_t n, double *t) {
    int64_t i = argmin(ids, n);
    double m = ids[i];
    if (m > *t) *t = m;
    return i;
}

/* ---- bank sharing ---------------------------------------------------------------- */
static int64_t *banks_buf(State *s, int64_t n) {
    if (n > s->banks_cap || !s->banks) {
        int64_t cap = n < 16 ? 16 : 2 * n;
        int64_t *p = (int64_t *)realloc(s->banks, (size_t)cap * sizeof(int64_t));
        if (!p) {
            s->oom = 1;
            return NULL;
        }
        s->banks = p;
        s->banks_cap = cap;
    }
    return s->banks;
}

/* _banks appended at out; returns the count */
static int64_t banks_of(const State *s, const int64_t *r, int64_t n, int64_t *out) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++, r += 3)
        if (r[2] > r[1]) out[k++] = r[0] ? -1 : py_div(r[1], s->sp_bank_rows);
    return k;
}

/* _overlap_rows */
static inline double overlap_rows(double first, double last, double rows, double s0, double e) {
    double lo = first > s0 ? first : s0;
    double hi = last + 1.0 < e ? last + 1.0 : e;
    if (hi <= lo) return 0.0;
    double span = last + 1.0 - first;
    return span > 0.0 ? (hi - lo) * (rows / span) : 0.0;
}

/* _note_dma_write */
static void note_dma_write(State *s, int64_t bank, double first, double last, int64_t rows) {
    Win *w = ring_push(&s->sp_writes[bank]);
    w->a = first;
    w->b = last;
    w->c = (double)rows;
    double steal = 0.0;
    for (int i = 0; i < s->ops_n; i++) {
        ExOp *op = &s->ex_ops[(s->ops_start + i) % WINDOWS];
        int in = 0;
        for (int64_t j = 0; j < op->nb; j++)
            if (op->banks[j] == bank) {
                in = 1;
                break;
            }
        if (in) steal += overlap_rows(first, last, (double)rows, op->s, op->e);
    }
    if (steal > 0.0 && s->ex_free > first) {
        s->ex_free += steal;
        s->bank_stall += steal;
    }
}

/* _steal */
static double steal_of(State *s, const int64_t *banks, int64_t nb, double s0, double e) {
    double steal = 0.0;
    for (int64_t i = 0; i < nb; i++) {
        int64_t bk = banks[i];
        if (bk < 0) continue;
        int seen = 0;
        for (int64_t j = 0; j < i; j++)
            if (banks[j] == bk) {
                seen = 1;
                break;
            }
        if (seen) continue;
        Ring *r = &s->sp_writes[bk];
        for (int k = 0; k < r->n; k++) {
            Win *w = ring_at(r, k);
            steal += overlap_rows(w->a, w->b, w->c, s0, e);
        }
    }
    return steal;
}

/* _acc_reads */
static double acc_reads(State *s, int64_t bank, double t, int64_t n) {
    double cur = t;
    double need = (double)n;
    Ring *r = &s->acc_windows[bank];
    for (int k = 0; k < r->n; k++) {
        Win *w = ring_at(r, k);
        double ws = w->a, we = w->b;
        if (we <= cur) continue;
        if (ws >= cur + need) break;
        double done = ws > cur ? ws - cur : 0.0;
        need -= done;
        cur = we;
    }
    return cur + need;
}

/* _remember_op */
static void remember_op(State *s, double s0, double e, const int64_t *banks, int64_t nb) {
    ExOp *op;
    if (s->ops_n < WINDOWS) {
        op = &s->ex_ops[(s->ops_start + s->ops_n) % WINDOWS];
        s->ops_n++;
    } else {
        op = &s->ex_ops[s->ops_start];
        s->ops_start = (s->ops_start + 1) % WINDOWS;
    }
    op->s = s0;
    op->e = e;
    if (nb > op->cap) {
        int64_t cap = nb < 8 ? 8 : 2 * nb;
        int64_t *p = (int64_t *)realloc(op->banks, (size_t)cap * sizeof(int64_t));
        if (!p) {
            s->oom = 1;
            op->nb = 0;
            return;
        }
        op->banks = p;
        op->cap = cap;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < nb; i++)
        if (banks[i] >= 0) op->banks[k++] = banks[i];
    op->nb = k;
}

static inline int64_t acc_bank(const State *s, int64_t a) {
    return py_mod(py_div(a, s->acc_bank_rows), s->acc_banks);
}

/* ---- execute ------------------------------------------------------------------------------- */
/* _resolve_pre */
static void resolve_pre(State *s, double t) {
    s->wp_has = 0;
    tu(s, T_EXR, s->wp_reads.v, s->wp_reads.n, t);
    tu(s, T_EXC, s->wp_writes.v, s->wp_writes.n, t);
    rs_release(s, C_EXEC, s->wp_slot, t);
}

/* _after_preload */
static void after_preload(State *s, const Cmd *p, double fed) {
    if (s->wp_has) resolve_pre(s, fed);
    if (p->writes.n) {
        s->wp_has = 1;
        s->wp_slot = p->slot;
        rng_set(s, &s->wp_reads, p->reads.v, p->reads.n);
        rng_set(s, &s->wp_writes, p->writes.v, p->writes.n);
        s->wp_fed = fed;
        s->wp_flags = p->flags;
        s->rs[C_EXEC][p->slot] = INFINITY;
    } else {
        double rel = fed + 1.0;
        tu(s, T_EXR, p->reads.v, p->reads.n, rel);
        rs_release(s, C_EXEC, p->slot, rel);
        s->wp_has = 0;
    }
    s->lp_has = 1;
    rng_set(s, &s->lp_writes, p->writes.v, p->writes.n);
    s->lp_flags = p->flags;
}

static inline double rows_of(const State *s, int64_t rows) {
    int64_t m = s->exec_min_rows;
    return (double)(rows > m ? rows : m);
}

/* _fire_preload */
static void fire_preload(State *s, const Cmd *c, double next_arrival) {
    double free = s->ex_free;
    double st = free > c->arrival ? free : c->arrival;
    if (next_arrival > st && next_arrival != INFINITY) st = next_arrival;
    int real_b = c->reads.n > 0;
    double n = real_b ? (double)s->dim : (double)s->exec_min_rows;
    int64_t *banks = banks_buf(s, c->reads.n);
    if (!banks) return;
    int64_t nb = banks_of(s, c->reads.v, c->reads.n, banks);
    double e0 = st + n;
    double steal = steal_of(s, banks, nb, st, e0);
    double e = e0 + steal;
    s->bank_stall += steal;
    s->ex_free = e;
    remember_op(s, st, e, banks, nb);
    account(s, C_EXEC, free, c->arrival, c->held, st, e);
    after_preload(s, c, e);
}

/* _fire_compute; pc is the next preload (merge_with) or NULL; returns whether it merged */
static int fire_compute(State *s, const Cmd *c, const Cmd *pc, double third) {
    double free = s->ex_free;
    double st = free > c->arrival ? free : c->arrival;
    double n = rows_of(s, c->rows);
    int64_t *banks = banks_buf(s, c->reads.n + (pc ? pc->reads.n : 0));
    if (!banks) return 0;
    int64_t nb = banks_of(s, c->reads.v, c->reads.n, banks);
    const Cmd *pre = NULL;
    if (pc) {
        if (pc->arrival <= st && third <= st) {
            pre = pc;
            if (pc->reads.n) {
                n = (double)s->dim;
                nb += banks_of(s, pc->reads.v, pc->reads.n, banks + nb);
            }
        }
    }
    int64_t factor = 1;
    for (int64_t i = 0; i < nb; i++) {
        int64_t cnt = 0;
        for (int64_t j = 0; j < nb; j++) cnt += banks[j] == banks[i];
        if (cnt > factor) factor = cnt;
    }
    double e0 = st + n * (double)factor;
    double steal = steal_of(s, banks, nb, st, e0);
    double e = e0 + steal;
    s->bank_stall += (e - st) - n;
    s->ex_free = e;
    remember_op(s, st, e, banks, nb);
    account(s, C_EXEC, free, c->arrival, c->held, st, e);
    double land = e - 1.0 + s->exec_result_lat;
    double drain = land + s->acc_commit;
    if (drain > s->ex_drain) s->ex_drain = drain;
    if (s->lp_has) {
        if (s->lp_flags & FLAG_ACCUMULATE) {
            const int64_t *r = s->lp_writes.v;
            for (int64_t i = 0; i < s->lp_writes.n; i++, r += 3) {
                if (r[0] && r[2] > r[1]) {
                    Ring *w = &s->acc_windows[acc_bank(s, r[1])];
                    double ws = st + s->exec_result_lat;
                    if (w->n && ring_at(w, w->n - 1)->b >= ws) {
                        ring_at(w, w->n - 1)->b = land + 1.0;
                    } else {
                        Win *x = ring_push(w);
                        x->a = ws;
                        x->b = land + 1.0;
                        x->c = 0.0;
                    }
                }
            }
        }
    }
    if (s->wp_has) resolve_pre(s, land + 1.0);
    s->lp_has = 0;
    double rel = e + 1.0;
    tu(s, T_EXR, c->reads.v, c->reads.n, rel);
    rs_release(s, C_EXEC, c->slot, rel);
    if (pre) {
        s->n_cmd[C_EXEC] += 1;
        after_preload(s, pre, e);
    }
    return pre != NULL;
}

/* _fire_other */
static void fire_other(State *s, const Cmd *c) {
    double free = s->ex_free;
    double st = free > c->arrival ? free : c->arrival;
    if (c->kind == K_CONFIG_EX && s->ex_drain > st) st = s->ex_drain;
    double e = st + s->config_ex_cycles;
    s->ex_free = e;
    account(s, C_EXEC, free, c->arrival, c->held, st, e);
    rs_release(s, C_EXEC, c->slot, e);
}

/* pending.pop(0), k times (the popped commands stay valid until the next push) */
static void pend_pop(State *s, int k) {
    while (k-- > 0) {
        Cmd *h = s->pend[0];
        for (int i = 1; i < s->pend_n; i++) s->pend[i - 1] = s->pend[i];
        s->pend[s->pend_n - 1] = h;
        s->pend_n--;
    }
}

/* _fire */
static int fire(State *s, int force) {
    Cmd **p = s->pend;
    int n = s->pend_n;
    Cmd *h = p[0];
    if (h->kind == K_PRELOAD) {
        if (n < 2 && !force) return 0;
        double nxt = n > 1 ? p[1]->arrival : INFINITY;
        fire_preload(s, h, nxt);
        pend_pop(s, 1);
        return 1;
    }
    if (h->kind == K_COMPUTE) {
        Cmd *mw = NULL;
        double third = INFINITY;
        if (n > 1 && p[1]->kind == K_PRELOAD) {
            if (n < 3 && !force) return 0;
            third = n > 2 ? p[2]->arrival : INFINITY;
            mw = p[1];
        } else if (n < 2 && !force) {
            return 0;
        }
        int merged = fire_compute(s, h, mw, third);
        pend_pop(s, merged ? 2 : 1);
        return 1;
    }
    fire_other(s, h);
    pend_pop(s, 1);
    return 1;
}

/* _fire_all */
static void fire_all(State *s) {
    while (s->pend_n) fire(s, 1);
    if (s->wp_has) resolve_pre(s, s->wp_fed + 1.0);
}

/* _settle */
static void settle(State *s, const int64_t *r, int64_t n) {
    if (!s->pend_n && !s->wp_has) return;
    int hit = 0;
    for (int i = 0; i < s->pend_n; i++) {
        Cmd *c = s->pend[i];
        if (touches(c->reads.v, c->reads.n, r, n) || touches(c->writes.v, c->writes.n, r, n)) {
            hit = 1;
            break;
        }
    }
    if (!hit && s->wp_has)
        hit = touches(s->wp_reads.v, s->wp_reads.n, r, n) || touches(s->wp_writes.v, s->wp_writes.n, r, n);
    if (hit) fire_all(s);
}

/* _execute */
static void ex_execute(State *s, int kind, int64_t slot, double arrival, int held, const int64_t *reads,
                       int64_t nr, const int64_t *writes, int64_t nw, int64_t rows, int64_t flags) {
    /* after the loop below at most 2 commands wait (a head with 2 more fires), so there is room */
    Cmd *c = s->pend[s->pend_n++];
    c->kind = kind;
    c->slot = slot;
    c->arrival = arrival;
    c->held = held;
    rng_set(s, &c->reads, reads, nr);
    rng_set(s, &c->writes, writes, nw);
    c->rows = rows;
    c->flags = flags;
    while (s->pend_n && fire(s, 0)) {
    }
}

/* ---- load --------------------------------------------------------------------------------- */
/* _finish_load */
static void finish_load(State *s, int64_t slot, const int64_t *writes, int64_t nw, double rel) {
    if (nw <= 1) {
        tu(s, T_LDW, writes, nw, rel);
    } else {
        int64_t h[6];
        int64_t nh = hull(writes, nw, h);
        tu(s, T_LDW, h, nh, rel);
    }
    rs_release(s, C_LOAD, slot, rel);
}

/* _load */
static void ld_load(State *s, int kind, int64_t slot, double arrival, int held, const int64_t *writes, int64_t nw,
                    int64_t dram_bytes, int64_t rows, int64_t cols, int64_t dram_addr, int64_t dram_stride,
                    int64_t flags) {
    double free = s->ld_free;
    if (kind == K_LD_OTHER) {
        double st = free > arrival ? free : arrival;
        double e = st + 1.0;
        s->ld_free = e;
        account(s, C_LOAD, free, arrival, held, st, e);
        return;
    }
    rows = rows > 0 ? rows : 1;
    const int64_t *r;
    if (kind == K_MVIN_ZERO) {
        double st = free > arrival ? free : arrival;
        int64_t blocks = cols > 0 ? ceil_div(cols, s->dim) : 1;
        double n = (double)(rows * blocks);
        double e = st + n + s->zero_fill;
        s->ld_free = st + n;
        r = writes;
        for (int64_t i = 0; i < nw; i++, r += 3)
            if (!r[0] && r[2] > r[1]) note_dma_write(s, py_div(r[1], s->sp_bank_rows), st, st + n - 1.0, r[2] - r[1]);
        account(s, C_LOAD, free, arrival, held, st, e);
        finish_load(s, slot, writes, nw, e + 1.0);
        return;
    }
    /* a DMA mvin */
    double *slots = s->ld_slots;
    int64_t si = argmin(slots, s->n_slots);
    double st = free > arrival ? free : arrival;
    if (slots[si] > st) st = slots[si];
    int64_t row_bytes = py_div(dram_bytes, rows);
    if (row_bytes <= 0) row_bytes = 1;
    int64_t n_read = (dram_stride == 0 && rows > 1) ? 1 : rows;
    double get_t = s->get_free;
    double t0 = st + s->mvin_req_lat;
    if (get_t < t0) get_t = t0;
    int scaled = (flags & FLAG_SCALED) != 0;
    double prev_w = s->row_w; /* the merger / scaler / write path is shared by all mvins */
    double first_w = INFINITY;
    double *rids = s->rids;
    int64_t beat = s->beat, max_req = s->max_req;
    for (int64_t rr = 0; rr < n_read; rr++) {
        int64_t addr = dram_addr + rr * dram_stride;
        double t_row = t0 + (double)rr;
        if (get_t > t_row) t_row = get_t;
        double data_end = 0.0;
        /* _requests(addr, row_bytes, max_req, beat), each request as it is made */
        int64_t a = addr, rem = row_bytes;
        while (rem > 0) {
            int64_t best = 0, best_s = beat;
            for (int64_t sz = beat; sz <= max_req; sz <<= 1) {
                int64_t cover = sz - py_mod(a, sz);
                if (cover > rem) cover = rem;
                if (cover > best) {
                    best = cover;
                    best_s = sz;
                }
            }
            int64_t req = a - py_mod(a, best_s);
            a += best;
            rem -= best;
            double t = tlb(s, CLIENT_READER, req, t_row);
            int64_t i = take_id(rids, s->n_rids, &t);
            double back = mem_xfer(s, t + s->mem_read_lat, best_s);
            rids[i] = back;
            t_row = t + 1.0;
            if (back > data_end) data_end = back;
        }
        get_t = t_row;
        double w = data_end + s->mvin_write_lat;
        double step = scaled ? s->mvin_scaled : 1.0;
        if (prev_w + step > w) w = prev_w + step;
        prev_w = w;
        if (w < first_w) first_w = w;
    }
    double last_w = prev_w + (double)(rows - n_read);
    s->row_w = last_w;
    s->get_free = get_t;
    s->ld_free = st + (double)rows;
    slots[si] = last_w;
    r = writes;
    for (int64_t i = 0; i < nw; i++, r += 3)
        if (!r[0] && r[2] > r[1]) note_dma_write(s, py_div(r[1], s->sp_bank_rows), first_w, last_w, r[2] - r[1]);
    s->dram_rd += n_read == rows ? dram_bytes : row_bytes;
    account(s, C_LOAD, free, arrival, held, st, last_w);
    finish_load(s, slot, writes, nw, last_w + s->mvin_release);
}

/* ---- store -------------------------------------------------------------------------------- */
/* _store */
static void st_store(State *s, int kind, int64_t slot, double issue, double arrival, int held, const int64_t *reads,
                     int64_t nr, int64_t dram_bytes, int64_t rows, int64_t cols, int64_t dram_addr,
                     int64_t dram_stride, int64_t flags) {
    double free = s->busy_until[C_STORE];
    if (kind == K_ST_OTHER) {
        double st = arrival;
        account(s, C_STORE, free, arrival, held, st, st + 1.0);
        rs_release(s, C_STORE, slot, issue + 1.0);
        return;
    }
    rows = rows > 0 ? rows : 1;
    int raw = (flags & FLAG_RAW) != 0;
    int64_t blocks = raw ? 1 : (cols > 0 ? ceil_div(cols, s->dim) : 1);
    int64_t n_reads = rows * blocks;
    double r0 = issue + s->mvout_read_lat;
    int64_t bank = -1;
    const int64_t *r = reads;
    for (int64_t i = 0; i < nr; i++, r += 3)
        if (r[0] && r[2] > r[1]) {
            bank = acc_bank(s, r[1]);
            break;
        }
    double r_end = bank >= 0 ? acc_reads(s, bank, r0, n_reads) : r0 + (double)n_reads;
    double read_last = r_end - 1.0;
    int64_t row_bytes = py_div(dram_bytes, rows);
    if (row_bytes <= 0) row_bytes = 1;
    int64_t beats = ceil_div(row_bytes, s->beat);
    double cadence = (double)(blocks + beats - 1);
    double span = r_end - r0;
    double p = s->wr_free;
    double put_wait = 0.0; /* puts[rows - 1 - buf] */
    int64_t wait_row = rows - 1 - s->mvout_buf;
    double *wids = s->wids;
    int64_t beat = s->beat, max_req = s->max_req;
    for (int64_t rr = 0; rr < rows; rr++) {
        double ready = r0 + span * (double)(rr + 1) / (double)rows - 1.0 + s->mvout_put_lat;
        if (ready > p) p = ready;
        int64_t addr = dram_addr + rr * dram_stride;
        int64_t a = addr, rem = row_bytes;
        while (rem > 0) {
            int64_t best = 0, best_s = beat;
            for (int64_t sz = beat; sz <= max_req; sz <<= 1) {
                int64_t cover = sz - py_mod(a, sz);
                if (cover > rem) cover = rem;
                if (cover > best) {
                    best = cover;
                    best_s = sz;
                }
            }
            int64_t req = a - py_mod(a, best_s);
            a += best;
            rem -= best;
            double t = tlb(s, CLIENT_WRITER, req, p);
            int64_t i = take_id(wids, s->n_wids, &t);
            double done = mem_xfer(s, t, best_s);
            double ack = done + s->mem_write_lat;
            wids[i] = ack;
            if (ack > s->last_ack) s->last_ack = ack;
            p = t;
        }
        if (rr == wait_row) put_wait = p;
        p += cadence;
    }
    s->wr_free = p;
    double rel = read_last + 1.0;
    if (rows > s->mvout_buf) {
        double waiting = put_wait + 1.0;
        if (waiting > rel) rel = waiting;
    }
    if (nr <= 1) {
        tu(s, T_STR, reads, nr, rel);
    } else {
        int64_t h[6];
        int64_t nh = hull(reads, nr, h);
        tu(s, T_STR, h, nh, rel);
    }
    s->dram_wr += dram_bytes;
    account(s, C_STORE, free, arrival, held, r0, p);
    rs_release(s, C_STORE, slot, rel);
}

/* ---- the entry point ----------------------------------------------------------------------- */
/* check that the ranges are in the tables (the Python model would raise or
 * misbehave on these; the functional machine never produces them) */
static int check_ranges(State *s, const int64_t *r, int64_t n) {
    for (int64_t i = 0; i < n; i++, r += 3) {
        int64_t sp = r[0], a = r[1], b = r[2];
        if (!(b > a)) continue; /* empty: never looked up */
        if (sp != 0 && sp != 1) {
            snprintf(s->err, sizeof s->err, "timing: space %lld is not 0 (scratchpad) or 1 (accumulator)",
                     (long long)sp);
            return -1;
        }
        if (a < 0 || b > (sp ? s->acc_rows : s->sp_rows)) {
            snprintf(s->err, sizeof s->err, "timing: rows [%lld, %lld) are outside the %s", (long long)a,
                     (long long)b, sp ? "accumulator" : "scratchpad");
            return -1;
        }
    }
    return 0;
}

static inline double max3(double a, double b, double c) {
    double m = a;
    if (b > m) m = b;
    if (c > m) m = c;
    return m;
}

/* command(); reads / writes are nr / nw (space, start, end) triples */
static int do_command(State *s, int kind, int fsm, int64_t dram_bytes, int64_t rows, int64_t cols,
                      int64_t dram_addr, int64_t dram_stride, int64_t flags, const int64_t *reads, int64_t nr,
                      const int64_t *writes, int64_t nw) {
    if (kind < 0 || kind > 9) {
        snprintf(s->err, sizeof s->err, "timing: bad op kind %d", kind);
        return -1;
    }
    if (kind == K_NONE) { /* flush and friends: CPU only */
        if (!fsm) {
            s->in_fsm = 0;
            double rocc = s->rocc;
            s->cpu_t += rocc;
            s->cpu_busy += rocc;
        }
        return 0;
    }
    if (check_ranges(s, reads, nr) || check_ranges(s, writes, nw)) return -1;
    int cls = CLASS_OF[kind];
    /* dependencies: fire pending executes this command waits for */
    int64_t deps_buf[6];
    const int64_t *deps = deps_buf;
    int64_t nd = 0;
    if (cls == C_LOAD) {
        if (nw <= 1) {
            deps = writes;
            nd = nw;
        } else {
            nd = hull(writes, nw, deps_buf);
        }
    } else if (cls == C_STORE) {
        if (nr <= 1) {
            deps = reads;
            nd = nr;
        } else {
            nd = hull(reads, nr, deps_buf);
        }
    }
    if (nd) settle(s, deps, nd);
    if (dmin(s->rs[cls], s->n_rs[cls]) == INFINITY) fire_all(s);
    /* into the reservation station */
    double alloc;
    if (fsm) {
        if (!s->in_fsm) do_fsm_begin(s);
        alloc = fsm_alloc(s, cls);
    } else {
        s->in_fsm = 0;
        alloc = frontend(s, cls);
    }
    int64_t slot = argmin(s->rs[cls], s->n_rs[cls]);
    s->rs[cls][slot] = INFINITY;
    double dep = 0.0;
    if (cls == C_EXEC) {
        if (kind == K_COMPUTE || kind == K_PRELOAD) {
            dep = tq(s, T_LDW, reads, nr);
            if (kind == K_PRELOAD && nw) {
                double d2 = tq(s, T_LDW, writes, nw);
                double d3 = tq(s, T_STR, writes, nw);
                dep = max3(dep, d2, d3);
            }
        }
    } else if (cls == C_LOAD) {
        if (kind != K_LD_OTHER)
            dep = max3(tq(s, T_EXR, deps, nd), tq(s, T_EXC, deps, nd), tq(s, T_STR, deps, nd));
    } else {
        if (s->store_release > dep) dep = s->store_release;
        if (kind == K_MVOUT) dep = max3(dep, tq(s, T_LDW, deps, nd), tq(s, T_EXC, deps, nd));
    }
    /* _issue */
    double issue = alloc + s->rs_issue_lat;
    double li = s->last_issue[cls] + 1.0;
    if (li > issue) issue = li;
    if (dep > issue) issue = dep;
    s->last_issue[cls] = issue;
    double arrival = issue + s->q_lat[cls];
    int held = dep > alloc + s->rs_issue_lat;
    if (cls == C_EXEC) {
        ex_execute(s, kind, slot, arrival, held, reads, nr, writes, nw, rows, flags);
    } else if (cls == C_LOAD) {
        ld_load(s, kind, slot, arrival, held, writes, nw, dram_bytes, rows, cols, dram_addr, dram_stride, flags);
        if (kind == K_LD_OTHER) rs_release(s, C_LOAD, slot, issue + 1.0);
    } else {
        st_store(s, kind, slot, issue, arrival, held, reads, nr, dram_bytes, rows, cols, dram_addr, dram_stride,
                 flags);
    }
    if (s->oom) {
        snprintf(s->err, sizeof s->err, "timing: out of memory");
        return -1;
    }
    return 0;
}

static void do_fence(State *s) {
    s->in_fsm = 0;
    fire_all(s);
    double done = s->last_end;
    if (s->last_ack > done) done = s->last_ack;
    if (s->ex_drain > done) done = s->ex_drain;
    if (s->cpu_t > done) done = s->cpu_t;
    double tail = s->fence_tail;
    s->stall_fence += done - s->cpu_t + tail;
    s->cpu_t = done + tail;
}

/* _finish_time: fires what is pending (as the Python model does) */
double tk_finish(State *s) {
    fire_all(s);
    double m = s->cpu_t;
    if (s->last_end > m) m = s->last_end;
    if (s->last_ack > m) m = s->last_ack;
    if (s->ex_drain > m) m = s->ex_drain;
    return m;
}

double tk_now(const State *s) { return s->cpu_t; }

/* ---- the raw state, for FastTimingModel.report() and the tests -------------------------
 * dout: SNAP_D scalars, then busy busy_until st_dep st_issue last_issue fsm_next (3 each),
 *       fe_ring, rs[0..2], ld_slots, rids, wids, runs
 * iout: n_rocc fe_i dram_rd dram_wr in_fsm n_pending has_wait_pre runs_n tlb_len n_cmd[3] tlb_last[2], tlb
 * (timing_fast.py _SNAP_* name them) */
#define SNAP_D 20
#define SNAP_I 14
void tk_snapshot_size(const State *s, int64_t *nd, int64_t *ni) {
    *nd = SNAP_D + 18 + s->fe_n + s->n_rs[0] + s->n_rs[1] + s->n_rs[2] + s->n_slots + s->n_rids + s->n_wids +
          s->runs_n;
    *ni = SNAP_I + s->tlb_len;
}

void tk_snapshot(const State *s, double *d, int64_t *iv) {
    const double sc[SNAP_D] = {s->cpu_t, s->cpu_busy, s->cpu_scalar, s->stall_rs, s->stall_fence, s->last_alloc,
                               s->store_release, s->last_end, s->ex_free, s->ex_drain, s->bank_stall, s->ld_free,
                               s->get_free, s->wr_free, s->last_ack, s->fsm_last_issue, s->run_start, s->run_ld,
                               s->run_ex, s->row_w};
    int64_t k = 0;
    for (int i = 0; i < SNAP_D; i++) d[k++] = sc[i];
    const double *v3[6] = {s->busy, s->busy_until, s->st_dep, s->st_issue, s->last_issue, s->fsm_next};
    for (int j = 0; j < 6; j++)
        for (int c = 0; c < 3; c++) d[k++] = v3[j][c];
    for (int64_t i = 0; i < s->fe_n; i++) d[k++] = s->fe_ring[i];
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < s->n_rs[c]; i++) d[k++] = s->rs[c][i];
    for (int64_t i = 0; i < s->n_slots; i++) d[k++] = s->ld_slots[i];
    for (int64_t i = 0; i < s->n_rids; i++) d[k++] = s->rids[i];
    for (int64_t i = 0; i < s->n_wids; i++) d[k++] = s->wids[i];
    for (int i = 0; i < s->runs_n; i++) d[k++] = s->runs[i];
    int64_t j = 0;
    iv[j++] = s->n_rocc;
    iv[j++] = s->fe_i;
    iv[j++] = s->dram_rd;
    iv[j++] = s->dram_wr;
    iv[j++] = s->in_fsm;
    iv[j++] = s->pend_n;
    iv[j++] = s->wp_has;
    iv[j++] = s->runs_n;
    iv[j++] = s->tlb_len;
    for (int c = 0; c < 3; c++) iv[j++] = s->n_cmd[c];
    iv[j++] = s->tlb_last[0];
    iv[j++] = s->tlb_last[1];
    for (int64_t i = 0; i < s->tlb_len; i++) iv[j++] = s->tlb[i];
}

/* the memory calendar's non-zero buckets as (bucket, bytes) pairs into out
 * (2 doubles each, up to cap pairs), in bucket order; returns how many there
 * are (-1 when out of memory) */
static int key_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t tk_calendar(State *s, double *out, int64_t cap) {
    PMap *m = &s->cal;
    int64_t *keys = (int64_t *)malloc((size_t)(m->n > 0 ? m->n : 1) * sizeof(int64_t));
    if (!keys) return -1;
    int64_t nk = 0;
    for (int64_t i = 0; i < m->cap; i++)
        if (m->slots[i].data) keys[nk++] = m->slots[i].key;
    qsort(keys, (size_t)nk, sizeof(int64_t), key_cmp);
    int64_t k = 0;
    for (int64_t p = 0; p < nk; p++) {
        const double *v = (const double *)pm_find(m, keys[p]);
        for (int64_t i = 0; i < PG_N; i++)
            if (v[i] != 0.0) {
                if (k < cap) {
                    out[2 * k] = (double)(keys[p] * PG_N + i);
                    out[2 * k + 1] = v[i];
                }
                k++;
            }
    }
    free(keys);
    return k;
}

/* Test hooks: the row scoreboard alone. table 0 = t_ldw, 1 = t_exr, 2 = t_exc,
 * 3 = t_str; space 0 / 1. Returns -1 (and sets tk_error) on a bad range, else
 * 0; tk_table_qmax returns the max (0.0 for an empty range). */
static Table *hook_table(State *s, int table, int64_t sp, int64_t a, int64_t b) {
    int64_t r[3] = {sp, a, b};
    if (table < 0 || table >= T_N || check_ranges(s, r, 1)) return NULL;
    return &s->tab[table][sp];
}

int tk_table_umax(State *s, int table, int64_t sp, int64_t a, int64_t b, double t) {
    if (!(b > a)) return 0;
    Table *tb = hook_table(s, table, sp, a, b);
    if (!tb) return -1;
    umax(tb, a, b, t);
    return 0;
}

double tk_table_qmax(State *s, int table, int64_t sp, int64_t a, int64_t b) {
    if (!(b > a)) return 0.0;
    Table *tb = hook_table(s, table, sp, a, b);
    if (!tb) return -1.0;
    return qmax(tb, a, b);
}

int tk_run(State *s, const int64_t *rec, int64_t n) {
    int64_t i = 0;
    while (i < n) {
        int64_t tag = rec[i];
        switch (tag) {
        case TK_CPU:
            if (i + 2 > n) goto truncated;
            do_cpu(s, (double)rec[i + 1]);
            i += 2;
            break;
        case TK_CPUF: {
            if (i + 2 > n) goto truncated;
            double c;
            memcpy(&c, &rec[i + 1], sizeof c);
            do_cpu(s, c);
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
            if (i + TK_CMD_HEADER > n) goto truncated;
            const int64_t *h = rec + i;
            int64_t nr = h[9], nw = h[10];
            if (nr < 0 || nw < 0 || nr > n || nw > n || i + TK_CMD_HEADER + 3 * (nr + nw) > n) goto truncated;
            const int64_t *rd = h + TK_CMD_HEADER;
            if (h[1] < 0 || h[1] > 9) {
                snprintf(s->err, sizeof s->err, "timing: bad op kind %lld at word %lld", (long long)h[1],
                         (long long)i);
                return -1;
            }
            if (do_command(s, (int)h[1], h[2] != 0, h[4], h[5], h[6], h[7], h[8], h[3], rd, nr, rd + 3 * nr, nw))
                return -1;
            i += TK_CMD_HEADER + 3 * (nr + nw);
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
static int ranges(int64_t *out, Py_ssize_t n, PyObject **items) {
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
    return 0;
}

/* float(cycles), as cpu() in sim/timing.py takes it */
static int cpu_obj(State *s, PyObject *o) {
    double c;
    if (PyFloat_Check(o)) {
        c = PyFloat_AS_DOUBLE(o);
    } else if (PyLong_Check(o)) {
        c = PyLong_AsDouble(o);
        if (c == -1.0 && PyErr_Occurred()) return -1;
    } else { /* float(o): __float__, else __index__ */
        c = PyFloat_AsDouble(o);
        if (c == -1.0 && PyErr_Occurred()) return -1;
    }
    do_cpu(s, c);
    return 0;
}

#define CMD_NARGS 12
/* command(op, unit, reads, writes, dram_bytes, rows, cols, fsm, bank_conflict, dram_addr, dram_stride,
 * flags); a[i] NULL = not given (its default) */
static int command_obj(State *s, PyObject *const *a) {
    int kind = op_kind(a[0]);
    if (kind < 0) kind = unit_kind(a[1]);
    int fsm = a[7] ? truth(a[7]) : 0;
    if (fsm < 0) return -1;
    if (kind == K_NONE) return do_command(s, K_NONE, fsm, 0, 0, 0, 0, 0, 0, NULL, 0, NULL, 0);
    if (a[8] && truth(a[8]) < 0) return -1; /* bank_conflict: accepted, not used by the model */
    int64_t v[6] = {0, 0, 0, 0, 0, 0}; /* dram_bytes rows cols dram_addr dram_stride flags */
    static const int pos[6] = {4, 5, 6, 9, 10, 11};
    for (int k = 0; k < 6; k++)
        if (a[pos[k]] && as_i64(a[pos[k]], &v[k])) return -1;
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
    if (buf && !ranges(buf, nr, ri) && !ranges(buf + 3 * nr, nw, wi)) {
        rc = do_command(s, kind, fsm, v[0], v[1], v[2], v[3], v[4], v[5], buf, nr, buf + 3 * nr, nw);
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

static const char *const CMD_KW[CMD_NARGS] = {"op", "unit", "reads", "writes", "dram_bytes", "rows", "cols",
                                              "fsm", "bank_conflict", "dram_addr", "dram_stride", "flags"};

static PyObject *model_command(ModelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *a[CMD_NARGS] = {NULL};
    if (nargs > CMD_NARGS) {
        PyErr_Format(PyExc_TypeError, "command() takes at most %d arguments (%zd given)", CMD_NARGS, nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) a[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t j = 0; j < nk; j++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, j);
            int k = 0;
            while (k < CMD_NARGS && PyUnicode_CompareWithASCIIString(name, CMD_KW[k]) != 0) k++;
            if (k == CMD_NARGS) {
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

static PyObject *model_cpu(ModelObject *self, PyObject *cycles) {
    if (cpu_obj(self->s, cycles)) return NULL;
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

static PyObject *model_finish(ModelObject *self, PyObject *unused) {
    (void)unused;
    return PyFloat_FromDouble(tk_finish(self->s));
}

static PyObject *model_now(ModelObject *self, PyObject *unused) {
    (void)unused;
    return PyFloat_FromDouble(self->s->cpu_t);
}

/* (floats, ints) as tk_snapshot */
static PyObject *model_snapshot(ModelObject *self, PyObject *unused) {
    (void)unused;
    int64_t nd, ni;
    tk_snapshot_size(self->s, &nd, &ni);
    double *d = (double *)malloc((size_t)nd * sizeof(double));
    int64_t *iv = (int64_t *)malloc((size_t)ni * sizeof(int64_t));
    PyObject *td = NULL, *ti = NULL, *out = NULL;
    if (!d || !iv) {
        PyErr_NoMemory();
        goto done;
    }
    tk_snapshot(self->s, d, iv);
    td = PyTuple_New((Py_ssize_t)nd);
    ti = PyTuple_New((Py_ssize_t)ni);
    if (!td || !ti) goto done;
    for (int64_t k = 0; k < nd; k++) {
        PyObject *v = PyFloat_FromDouble(d[k]);
        if (!v) goto done;
        PyTuple_SET_ITEM(td, k, v);
    }
    for (int64_t k = 0; k < ni; k++) {
        PyObject *v = PyLong_FromLongLong(iv[k]);
        if (!v) goto done;
        PyTuple_SET_ITEM(ti, k, v);
    }
    out = PyTuple_Pack(2, td, ti);
done:
    Py_XDECREF(td);
    Py_XDECREF(ti);
    free(d);
    free(iv);
    return out;
}

/* the State's address, for the ctypes entry points (test hooks, tk_calendar) */
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
     "command(op, unit, reads=(), writes=(), dram_bytes=0, rows=0, cols=0, fsm=False, bank_conflict=False, "
     "dram_addr=0, dram_stride=0, flags=0)"},
    {"cpu", (PyCFunction)model_cpu, METH_O, "cpu(cycles)"},
    {"fence", (PyCFunction)model_fence, METH_NOARGS, "fence()"},
    {"fsm_begin", (PyCFunction)model_fsm_begin, METH_NOARGS, "fsm_begin()"},
    {"fsm_end", (PyCFunction)model_fsm_end, METH_NOARGS, "fsm_end()"},
    {"finish", (PyCFunction)model_finish, METH_NOARGS, "TimingModel._finish_time()"},
    {"now", (PyCFunction)model_now, METH_NOARGS, "the CPU time"},
    {"snapshot", (PyCFunction)model_snapshot, METH_NOARGS, "the raw state: (floats, ints)"},
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
    if (!s) {
        PyErr_SetString(PyExc_ValueError, "timing: unusable parameters (or out of memory)");
        return NULL;
    }
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
    if (PyModule_AddIntConstant(module, "IP_N", IP_N) < 0) return -1;
    if (PyModule_AddIntConstant(module, "DP_N", DP_N) < 0) return -1;
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
