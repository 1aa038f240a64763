/* emix's C API: fit, predict and score mixtures from C, Fortran (iso_c_binding) or any
 * language with a C FFI.
 *
 * Conventions
 * - Every function that can fail returns an emix_status: EMIX_OK (0) or an error code. After an
 *   error, emix_last_error() gives its message (for this thread), naming what was wrong.
 * - No C++ exception ever crosses this boundary.
 * - Options and models are opaque handles: create, use, destroy. Destroying NULL does nothing.
 * - Data are caller-owned, dense, row-major (element (n, d) at x[n * cols + d]), float or double
 *   (EMIX_FLOAT32 / EMIX_FLOAT64), in host memory or, for the GPU engine, in the memory of the
 *   current CUDA device (EMIX_DEVICE). Results go to caller-owned buffers of the sizes the
 *   functions state: per-row results (labels, responsibilities, log-densities) in the same
 *   memory as the data, everything else (models, scores, fit results) in host memory.
 * - Enumerations are passed as int (their values below are stable), booleans as int (0 / 1).
 * - The option setters refuse an enumeration value outside its list (EMIX_INVALID_ARGUMENT) and
 *   store any number: a number out of range (n_components 0, a NaN tol) is reported by the call
 *   that uses the options (emix_fit, emix_predict, ...), naming the option:
 *   "emix_fit: n_components is 0, must be at least 1".
 * - Messages number rows and columns from 1, as files do ("row 8, column 3" is x[7 * cols + 2]),
 *   re-seeding warnings included; fit results and warnings number restarts and components
 *   from 0.
 * - Handles: a call that creates one (emix_options_create, emix_model_create, emix_model_read,
 *   emix_fit, emix_accumulate, emix_statistics_deserialize, emix_maximize, emix_fit_mpi,
 *   emix_select, emix_selection_model, emix_select_mpi) sets
 *   its output to NULL first and to the new handle only on success; destroying NULL does
 *   nothing. Each handle carries its kind: a pointer to another kind of handle, or to one
 *   already destroyed, is refused by every call (EMIX_INVALID_ARGUMENT, "model is not a live
 *   emix_model ...") and by the destroy functions (nothing freed, the reason in
 *   emix_last_error()). That is a diagnosis, not a licence: a destroyed handle's memory may
 *   have gone to another handle of the same kind, which the check cannot tell apart.
 * - Thread safety: calls on different handles may run at once from any threads; one handle may
 *   be read (emix_fit, emix_predict, accessors) by several threads at once but not changed
 *   (setters, destroy) while used. emix_last_error() is per thread. A call from inside the
 *   caller's OpenMP parallel region runs on that thread alone unless the caller allows nested
 *   parallelism (omp_set_max_active_levels), as OpenMP decides; results are the same, and the
 *   fit report of the model file (emix_model_write: "fit", "engine") says how many threads ran.
 *   The caller's OpenMP settings are left as they were.
 * - Floating-point environment: each call runs with every exception masked (non-stop) and gives
 *   the calling thread back its environment as it was (traps, rounding, status flags), so a
 *   caller that traps exceptions (feenableexcept, gfortran -ffpe-trap) keeps its traps outside
 *   the library; the library's own arithmetic overflows and divides by zero on purpose where
 *   its rules handle the result. An iteration callback runs inside the call, non-stop.
 *
 * A fit, in short:
 *
 *   emix_options* opt = NULL;  emix_model* model = NULL;  emix_fit_result r;
 *   emix_options_create(&opt);
 *   emix_options_set_n_components(opt, 3);
 *   if (emix_fit(opt, x, n, d, EMIX_FLOAT64, EMIX_HOST, NULL, &model, &r) != EMIX_OK)
 *     fprintf(stderr, "%s\n", emix_last_error());  (model is NULL)
 *   ...
 *   emix_model_destroy(model);  emix_options_destroy(opt);
 */
#ifndef EMIX_EMIX_H
#define EMIX_EMIX_H

#include <stdint.h>

#include "emix/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int emix_status;
enum {
  EMIX_OK = 0,
  EMIX_INVALID_ARGUMENT = 1, /* a bad argument, option, model or data value */
  EMIX_IO_ERROR = 2,         /* a file that cannot be read or written, or is malformed */
  EMIX_NOT_AVAILABLE = 3,    /* a capability this build or machine lacks (GPU, MPI) */
  EMIX_OUT_OF_MEMORY = 4,    /* host or device memory could not be allocated */
  EMIX_NUMERICAL_ERROR = 5,  /* a numerical failure no policy recovered from */
  EMIX_CUDA_ERROR = 6,       /* a CUDA runtime or cuBLAS call failed */
  EMIX_MPI_ERROR = 7,        /* an MPI call failed */
  EMIX_INTERNAL_ERROR = 8,   /* a bug in emix: please report it with the message */
  EMIX_CANCELLED = 9         /* the iteration control stopped the fit */
};

/* Families, covariance types, initialisations, devices, element types, memory spaces. */
enum { EMIX_GAUSSIAN = 0, EMIX_BERNOULLI = 1, EMIX_BINOMIAL = 2 };
enum { EMIX_FULL = 0, EMIX_DIAG = 1, EMIX_SPHERICAL = 2, EMIX_TIED = 3 };
enum { EMIX_INIT_KMEANSPP = 0, EMIX_INIT_RANDOM = 1, EMIX_INIT_RANDOM_FROM_DATA = 2 };
enum { EMIX_DEVICE_AUTO = 0, EMIX_DEVICE_CPU = 1, EMIX_DEVICE_GPU = 2 };
enum { EMIX_FLOAT32 = 0, EMIX_FLOAT64 = 1 };
enum { EMIX_HOST = 0, EMIX_DEVICE = 1 };

/* The library's version, for example "0.1.0" (compare with EMIX_VERSION_STRING). */
const char* emix_version(void);
/* The message of this thread's most recent error ("" before the first); a successful call
 * leaves it as it was. Valid until this thread's next failing call. */
const char* emix_last_error(void);
/* The name of a status code, for example "EMIX_INVALID_ARGUMENT". */
const char* emix_status_name(emix_status status);
/* 1 when this build has the GPU engine, a CUDA device answers and cuBLAS loads, else 0. */
int emix_gpu_available(void);
/* Why emix_gpu_available() is 0, in words ("" when it is 1). Valid for the life of the process. */
const char* emix_gpu_unavailable_reason(void);

typedef struct emix_options emix_options;
typedef struct emix_model emix_model;

/* ---- Options ------------------------------------------------------------------------------ */

/* Defaults: 1 Gaussian full-covariance component, k-means++ init, max_iter 100, tol 1e-3,
 * reg_covar 1e-6, seed 0, device auto (the GPU when one answers). */
emix_status emix_options_create(emix_options** options);
void emix_options_destroy(emix_options* options);

emix_status emix_options_set_n_components(emix_options* options, int n_components);
emix_status emix_options_set_family(emix_options* options, int family);
emix_status emix_options_set_covariance(emix_options* options, int covariance);
/* Binomial: trials per entry; other families keep 1 (emix_fit refuses another value). */
emix_status emix_options_set_trials(emix_options* options, int trials);
emix_status emix_options_set_init(emix_options* options, int init);
/* Starting parameters, used as given; overrides the init method. The model is copied; NULL
 * clears it. */
emix_status emix_options_set_init_model(emix_options* options, const emix_model* model);
emix_status emix_options_set_kmeans_iter(emix_options* options, int kmeans_iter);
emix_status emix_options_set_init_max_rows(emix_options* options, int64_t init_max_rows);
emix_status emix_options_set_fixed_weights(emix_options* options, int fixed_weights);
emix_status emix_options_set_n_init(emix_options* options, int n_init);
emix_status emix_options_set_max_iter(emix_options* options, int max_iter);
emix_status emix_options_set_tol(emix_options* options, double tol);
emix_status emix_options_set_reg_covar(emix_options* options, double reg_covar);
emix_status emix_options_set_prob_epsilon(emix_options* options, double prob_epsilon);
emix_status emix_options_set_seed(emix_options* options, uint64_t seed);
/* Engine: where the E-step runs. */
emix_status emix_options_set_device(emix_options* options, int device);
/* OpenMP threads of the CPU engine, 0 (the default) for OpenMP's default; at most what
   OMP_THREAD_LIMIT leaves (inside the caller's parallel regions, an even share of it). In a
   process forked after emix ran several threads, emix runs on one: GNU OpenMP's thread pool
   does not survive fork(), and a parallel region in the child would never return. A child
   forked after the program's own OpenMP regions (or another library's, on the same GNU OpenMP
   as emix) is not seen: set 1 there, or its first fit hangs. */
emix_status emix_options_set_n_threads(emix_options* options, int n_threads);
emix_status emix_options_set_block_rows(emix_options* options, int64_t block_rows);
emix_status emix_options_set_chunk_rows(emix_options* options, int64_t chunk_rows);
emix_status emix_options_set_device_memory_limit(emix_options* options, int64_t bytes);
emix_status emix_options_set_allow_tf32(emix_options* options, int allow_tf32);
emix_status emix_options_set_gpu_device(emix_options* options, int gpu_device); /* -1: current */

/* Called after every EM iteration's E-step (iteration 0: the initial parameters). */
typedef struct emix_iteration_info {
  int init_run;
  int iteration;
  double log_likelihood; /* total, sum_n w_n log p(x_n) */
  double mean_log_likelihood;
  double change; /* in mean log-likelihood since the previous iteration (NaN at iteration 0) */
  double seconds;
} emix_iteration_info;
typedef void (*emix_iteration_callback)(const emix_iteration_info* info, void* user_data);
/* NULL removes the callback. */
emix_status emix_options_set_iteration_callback(emix_options* options,
                                                emix_iteration_callback callback, void* user_data);
/* A callback that can stop the fit (a deadline, a user's interrupt): it returns 0 to go on,
 * nonzero to stop. The fit then returns EMIX_CANCELLED and no model (an MPI fit: on every
 * rank, whichever rank's control stopped it). Options hold one callback of either kind: setting
 * one removes the other; NULL removes it. */
typedef int (*emix_iteration_control)(const emix_iteration_info* info, void* user_data);
emix_status emix_options_set_iteration_control(emix_options* options,
                                               emix_iteration_control control, void* user_data);

/* ---- Interrupting a call ------------------------------------------------------------------ */

/* A check the library runs on the calling thread, about every 50 ms of the work of each call
 * made from that thread (emix_fit, emix_select, emix_predict, emix_accumulate, ...): between the
 * pieces of a CPU pass, between initialisation's k-means steps, between iterations. It returns 0
 * to go on, nonzero to stop: the call then returns EMIX_CANCELLED, creates no handle (its
 * handle outputs stay NULL) and writes no file; a per-row buffer (labels, responsibilities,
 * log-densities) may hold the rows done before the stop, as after any failure. An iteration control
 * stops a fit between iterations; this reaches inside one, and into calls without options. The
 * usual use: a signal handler sets a flag, the check returns it.
 *
 *   static volatile sig_atomic_t stop = 0;
 *   static void on_sigint(int s) { (void)s; stop = 1; }
 *   static int stop_requested(void* user_data) { (void)user_data; return stop; }
 *   ...  signal(SIGINT, on_sigint);  emix_set_interrupt_check(stop_requested, NULL);
 *
 * The check belongs to the calling thread (other threads' calls do not run it) until another
 * replaces it; NULL removes it. It runs under the caller's floating-point environment. Not
 * checked: the GPU engine's passes, a covariance's factorisation, and emix_fit_mpi /
 * emix_select_mpi (one rank stopping alone would leave the others waiting; an iteration
 * control stops them all). */
typedef int (*emix_interrupt_check)(void* user_data);
emix_status emix_set_interrupt_check(emix_interrupt_check check, void* user_data);

/* ---- Models ------------------------------------------------------------------------------- */

/* A model from its parameters (copied; row-major doubles), validated:
 *   weights        K
 *   means          K x D           Gaussian only (else NULL)
 *   covariances    full K x D x D, diag K x D, spherical K, tied D x D   (Gaussian only)
 *   probabilities  K x D           Bernoulli / binomial only (else NULL)
 * covariance: Gaussian only (ignored for other families, whose models report EMIX_FULL);
 * trials: binomial trials per entry (ignored for other families). emix_fit, unlike this, refuses
 * options whose covariance type is not EMIX_FULL for a Bernoulli or binomial family. */
emix_status emix_model_create(int family, int covariance, int n_components, int n_features,
                              int trials, const double* weights, const double* means,
                              const double* covariances, const double* probabilities,
                              emix_model** model);
void emix_model_destroy(emix_model* model);

/* Model files (JSON, see the README). Writing a fitted model includes its fit summary. A model
 * read from a file keeps the file's fit summary (its warnings: emix_model_warning_count) and any
 * "estimator" section (the Python package's), and writes them back as they were. A model made by
 * emix_maximize or emix_model_create has no fit summary: its file holds the parameters alone
 * (an M-step's warnings are not written). */
emix_status emix_model_read(const char* path, emix_model** model);
emix_status emix_model_write(const emix_model* model, const char* path);

/* Any of the outputs may be NULL. */
emix_status emix_model_shape(const emix_model* model, int* family, int* covariance,
                             int* n_components, int* n_features, int* trials);
/* The number of doubles emix_model_get_covariances writes (0 for non-Gaussian families). */
emix_status emix_model_covariance_size(const emix_model* model, int64_t* size);
emix_status emix_model_get_weights(const emix_model* model, double* weights); /* K */
emix_status emix_model_get_means(const emix_model* model, double* means);     /* K x D */
emix_status emix_model_get_covariances(const emix_model* model, double* covariances);
emix_status emix_model_get_probabilities(const emix_model* model, double* probabilities);
/* Free parameters, as scikit-learn counts them (for BIC / AIC). */
emix_status emix_model_n_parameters(const emix_model* model, int64_t* n_parameters);
/* Warnings of the fit that made this model (re-seeded components, non-convergence,
 * identifiability), or of the emix_maximize that did (components left without weight): their
 * number, and the i-th (0-based; valid while the model lives). */
emix_status emix_model_warning_count(const emix_model* model, int* count);
emix_status emix_model_warning(const emix_model* model, int index, const char** text);

/* ---- Fitting ------------------------------------------------------------------------------ */

typedef struct emix_fit_result {
  double log_likelihood;      /* total, sum_n w_n log p(x_n | model) */
  double mean_log_likelihood; /* log_likelihood / sum_n w_n */
  int n_iter;                 /* M-steps taken */
  int converged;              /* 1 when the change fell below tol */
  int best_init;              /* which of the n_init restarts won (0-based) */
  int n_warnings;
  double seconds;
} emix_fit_result;

/* Fits a mixture to x (rows x cols). sample_weight: host, rows non-negative values, or NULL
 * for all ones. *model receives a new model (destroy it); result may be NULL. */
emix_status emix_fit(const emix_options* options, const void* x, int64_t rows, int64_t cols,
                     int dtype, int memory, const double* sample_weight, emix_model** model,
                     emix_fit_result* result);

/* ---- Prediction and scoring ---------------------------------------------------------------
 * options: only its engine settings are used (device, threads, ...); NULL for the defaults.
 * The per-row results (predict, predict_proba, score_samples) are written straight into the
 * caller's buffer, in the data's memory (EMIX_DEVICE: device memory), a block of rows at a time:
 * beyond it they take one block's log-densities (128 MiB), and so does a score, bic or aic of
 * any number of rows (results in device memory pass through host buffers of about that size). After
 * a failure the buffer's contents are unspecified. Data without rows (an empty rank's share) give
 * no results, and x and the buffer may then be NULL; a score, bic or aic of no rows, a mean over
 * nothing, is refused. The model is checked and its covariances factored by its first
 * evaluation, which the handle keeps for the next ones with the CPU engine's plans (up to about
 * twice the covariances' memory, until the handle is destroyed); a model that fails the check
 * fails every evaluation. Several threads may evaluate one handle at once. */

/* Most probable component of each row: labels[rows]. */
emix_status emix_predict(const emix_model* model, const emix_options* options, const void* x,
                         int64_t rows, int64_t cols, int dtype, int memory, int32_t* labels);
/* Responsibilities p(k | x_n): resp[rows x K], row-major. */
emix_status emix_predict_proba(const emix_model* model, const emix_options* options, const void* x,
                               int64_t rows, int64_t cols, int dtype, int memory, double* resp);
/* log p(x_n): log_prob[rows]. */
emix_status emix_score_samples(const emix_model* model, const emix_options* options, const void* x,
                               int64_t rows, int64_t cols, int dtype, int memory, double* log_prob);
/* Weighted mean of log p(x_n) (sample_weight may be NULL). */
emix_status emix_score(const emix_model* model, const emix_options* options, const void* x,
                       int64_t rows, int64_t cols, int dtype, int memory,
                       const double* sample_weight, double* score);
/* -2 log L + p log N and -2 log L + 2 p, of unweighted rows. */
emix_status emix_bic(const emix_model* model, const emix_options* options, const void* x,
                     int64_t rows, int64_t cols, int dtype, int memory, double* bic);
emix_status emix_aic(const emix_model* model, const emix_options* options, const void* x,
                     int64_t rows, int64_t cols, int dtype, int memory, double* aic);
/* The same of weighted rows: log L and N count each row by its weight, as repetitions (a row of
 * weight 2 counts as the row twice), as emix_fit's and emix_select's do. sample_weight: host,
 * `rows` non-negative values, or NULL for emix_bic / emix_aic. */
emix_status emix_bic_weighted(const emix_model* model, const emix_options* options, const void* x,
                              int64_t rows, int64_t cols, int dtype, int memory,
                              const double* sample_weight, double* bic);
emix_status emix_aic_weighted(const emix_model* model, const emix_options* options, const void* x,
                              int64_t rows, int64_t cols, int dtype, int memory,
                              const double* sample_weight, double* aic);

/* ---- Sufficient statistics (emix/statistics.hpp) ---------------------------------------------
 * The E-step's sums over some rows under one model: what out-of-core, distributed and online
 * fits merge. An emix_statistics handle is created by emix_accumulate or
 * emix_statistics_deserialize and destroyed by emix_statistics_destroy. */
typedef struct emix_statistics emix_statistics;

/* The statistics of rows x (rows x cols, dtype, memory as for emix_fit) under `model`, on the
 * engine `options` chooses (NULL: defaults). sample_weight: host, `rows` values, or NULL. */
emix_status emix_accumulate(const emix_model* model, const emix_options* options, const void* x,
                            int64_t rows, int64_t cols, int dtype, int memory,
                            const double* sample_weight, emix_statistics** statistics);
void emix_statistics_destroy(emix_statistics* statistics);
/* into += other: statistics of other rows under the same model (EMIX_INVALID_ARGUMENT for
 * another shape, statistics centred on other means, or a sum past double's range, `into` then
 * unchanged). Merging in a fixed order gives bitwise the same sums every time. Gaussian
 * statistics of a model that differs only in its weights or covariances, and Bernoulli and
 * binomial statistics (plain sums, not centred) of another model of the same shape, merge:
 * keeping model versions apart is the caller's part. */
emix_status emix_statistics_merge(emix_statistics* into, const emix_statistics* other);
/* The total weighted log-likelihood and the sum of the weights of the rows summed. */
emix_status emix_statistics_totals(const emix_statistics* statistics, double* log_likelihood,
                                   double* weight_sum);
/* sum_n w_n H_n, the entropy H_n = -sum_k p(k | x_n) log p(k | x_n) of the rows'
 * responsibilities (the ICL adds twice it to the BIC). */
emix_status emix_statistics_entropy(const emix_statistics* statistics, double* entropy);
/* A self-describing byte string, with a checksum that emix_statistics_deserialize verifies: with
 * buffer NULL, *size receives the bytes needed; otherwise
 * `capacity` bytes are available at buffer and *size receives the bytes written. When capacity
 * is too small the call fails with EMIX_INVALID_ARGUMENT and *size still receives the bytes
 * needed. */
emix_status emix_statistics_serialize(const emix_statistics* statistics, void* buffer,
                                      int64_t capacity, int64_t* size);
emix_status emix_statistics_deserialize(const void* bytes, int64_t size,
                                        emix_statistics** statistics);
/* The M-step: a new model from statistics accumulated under `model`, with the options'
 * reg_covar and fixed weights (NULL: defaults). Components without weight keep `model`'s
 * parameters and are named in the new model's warnings. EMIX_INVALID_ARGUMENT for statistics
 * without weight or with values no accumulation gives (NaN, negative weights, a scatter about
 * the new mean that is not positive semi-definite), and, naming the component, for a new
 * covariance that is not positive definite: a component that collapsed onto rows in a subspace
 * (with reg_covar 0; emix_fit re-seeds such a component) or rows spread beyond double
 * precision. */
emix_status emix_maximize(const emix_model* model, const emix_statistics* statistics,
                          const emix_options* options, emix_model** next);
/* *lost = 1 where `statistics` (summed about the means of the model they were accumulated
 * under) rounded away digits of the covariances of `next`, the model emix_maximize made of them:
 * a mean that moved by far more than its component's spread. The exact step then: accumulate the
 * same rows again under the same model about next's means (emix_accumulate_about), merge, and
 * maximize those, as emix_fit does. 0 for Bernoulli and binomial statistics. */
emix_status emix_scatter_lost_digits(const emix_model* next, const emix_statistics* statistics,
                                     int* lost);
/* emix_accumulate with the sums and second moments about `centres` (K x D doubles, row-major,
 * finite) instead of the model's means; Gaussian mixtures only. */
emix_status emix_accumulate_about(const emix_model* model, const emix_options* options,
                                  const double* centres, const void* x, int64_t rows, int64_t cols,
                                  int dtype, int memory, const double* sample_weight,
                                  emix_statistics** statistics);

/* ---- Model selection (emix/select.hpp) ----------------------------------------------------
 * A grid of numbers of components x covariance types fitted together, every pass over the data
 * serving every candidate still running, and scored by BIC, AIC and ICL (lower is better):
 *   BIC = -2 log L + p log W,  AIC = -2 log L + 2 p,  ICL = BIC + 2 sum_n w_n H_n
 * (p free parameters, W the sum of the weights, H_n the entropy of row n's responsibilities).
 * Each candidate's fit is bitwise emix_fit's with the same options and its K and covariance
 * type; the choice is deterministic. An emix_selection handle holds the outcome: emix_select
 * (or emix_select_mpi) creates it, emix_selection_destroy destroys it. */
typedef struct emix_selection emix_selection;
enum { EMIX_CRITERION_BIC = 0, EMIX_CRITERION_AIC = 1, EMIX_CRITERION_ICL = 2 };

typedef struct emix_candidate {
  int n_components;
  int covariance; /* EMIX_FULL .. EMIX_TIED (EMIX_FULL for the Bernoulli and binomial families) */
  int failed;     /* 1: its fit failed (its last warning says why; see emix_select) */
  int n_iter;
  int converged;
  int best_init;
  int n_warnings;
  int64_t n_parameters;
  double log_likelihood;
  double bic;
  double aic;
  double icl;
  double seconds;
} emix_candidate;

/* Fits and scores every candidate on x (rows x cols, dtype, memory and sample_weight as for
 * emix_fit). options: every candidate's fit options (family, trials, initialisation, n_init,
 * tol, max_iter, reg_covar, seed, engine); its n_components, covariance and init model are
 * ignored (every candidate initialises as `init` says). Its iteration callback or control is
 * called for every candidate's iterations, interleaved pass by pass (iteration 0 once per
 * candidate and restart; the info does not say which candidate); a control that returns nonzero
 * stops the whole selection: EMIX_CANCELLED and no handle.
 * n_components: the K grid (n_k values, each >= 1 and at most the options' init_max_rows, none
 * twice). covariances: the Gaussian covariance types to try (n_covariances values, none twice),
 * or NULL and 0 for all four (EMIX_FULL, EMIX_DIAG, EMIX_SPHERICAL, EMIX_TIED); the Bernoulli and
 * binomial families take NULL and 0 (one candidate per K, reported as EMIX_FULL). criterion:
 * EMIX_CRITERION_BIC, _AIC or _ICL, the one that chooses. Candidates come covariance type by
 * covariance type in that order, then K in the given order.
 * A candidate whose fit fails (a K larger than the rows, a covariance that is not positive
 * definite without reg_covar, components that kept collapsing) is reported as failed: criteria
 * +infinity, log-likelihood -infinity, n_iter 0, its last warning the reason; it is never
 * chosen. When every candidate fails the call fails: EMIX_INVALID_ARGUMENT when every K exceeds
 * the rows, else EMIX_NUMERICAL_ERROR naming the first candidate's reason. */
emix_status emix_select(const emix_options* options, const int* n_components, int n_k,
                        const int* covariances, int n_covariances, int criterion, const void* x,
                        int64_t rows, int64_t cols, int dtype, int memory,
                        const double* sample_weight, emix_selection** selection);
void emix_selection_destroy(emix_selection* selection);
/* The number of candidates, the chosen one's index (0-based), and the passes over the data;
 * any output may be NULL. */
emix_status emix_selection_summary(const emix_selection* selection, int* n_candidates, int* best,
                                   int* passes);
emix_status emix_selection_candidate(const emix_selection* selection, int index,
                                     emix_candidate* candidate);
/* Candidate index's fitted model, as emix_fit returns it (its fit report and warnings
 * included): a new handle to destroy. Refused for a failed candidate, naming why it failed. */
emix_status emix_selection_model(const emix_selection* selection, int index, emix_model** model);
/* Warning `warning` (0-based, below the candidate's n_warnings) of candidate index; valid as
 * long as the selection. */
emix_status emix_selection_warning(const emix_selection* selection, int index, int warning,
                                   const char** text);

#ifdef __cplusplus
}
#endif

#endif /* EMIX_EMIX_H */
