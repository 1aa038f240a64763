! Fortran binding of emix's C API (emix/emix.h) through iso_c_binding. Compile this file with
! your program (CMake: find_package(emix) sets emix_FORTRAN_SOURCES) and link emix::emix.
!
! Arrays cross as in C: row-major. A Fortran array x(d, n) (column-major, one point per
! column) is exactly the row-major n x d matrix emix expects, so pass x with rows = n,
! cols = d. Results come back the same way: resp(k, n), means(d, k).
!
! Every function returns an integer(c_int) status (EMIX_OK = 0); emix_error_message() gives
! the last error's message as a Fortran string.
module emix
  use, intrinsic :: iso_c_binding
  implicit none
  private

  integer(c_int), parameter, public :: EMIX_OK = 0, EMIX_INVALID_ARGUMENT = 1, &
    EMIX_IO_ERROR = 2, EMIX_NOT_AVAILABLE = 3, EMIX_OUT_OF_MEMORY = 4, &
    EMIX_NUMERICAL_ERROR = 5, EMIX_CUDA_ERROR = 6, EMIX_MPI_ERROR = 7, EMIX_INTERNAL_ERROR = 8, &
    EMIX_CANCELLED = 9
  integer(c_int), parameter, public :: EMIX_GAUSSIAN = 0, EMIX_BERNOULLI = 1, EMIX_BINOMIAL = 2
  integer(c_int), parameter, public :: EMIX_FULL = 0, EMIX_DIAG = 1, EMIX_SPHERICAL = 2, &
    EMIX_TIED = 3
  integer(c_int), parameter, public :: EMIX_INIT_KMEANSPP = 0, EMIX_INIT_RANDOM = 1, &
    EMIX_INIT_RANDOM_FROM_DATA = 2
  integer(c_int), parameter, public :: EMIX_DEVICE_AUTO = 0, EMIX_DEVICE_CPU = 1, &
    EMIX_DEVICE_GPU = 2
  integer(c_int), parameter, public :: EMIX_FLOAT32 = 0, EMIX_FLOAT64 = 1
  integer(c_int), parameter, public :: EMIX_HOST = 0, EMIX_DEVICE = 1
  integer(c_int), parameter, public :: EMIX_CRITERION_BIC = 0, EMIX_CRITERION_AIC = 1, &
    EMIX_CRITERION_ICL = 2

  ! One candidate of a model selection (emix_selection_candidate).
  type, bind(c), public :: emix_candidate
    integer(c_int) :: n_components
    integer(c_int) :: covariance
    integer(c_int) :: failed  ! 1: its fit failed; its criteria are infinite
    integer(c_int) :: n_iter
    integer(c_int) :: converged
    integer(c_int) :: best_init
    integer(c_int) :: n_warnings
    integer(c_int64_t) :: n_parameters
    real(c_double) :: log_likelihood
    real(c_double) :: bic
    real(c_double) :: aic
    real(c_double) :: icl
    real(c_double) :: seconds
  end type emix_candidate

  type, bind(c), public :: emix_fit_result
    real(c_double) :: log_likelihood
    real(c_double) :: mean_log_likelihood
    integer(c_int) :: n_iter
    integer(c_int) :: converged
    integer(c_int) :: best_init
    integer(c_int) :: n_warnings
    real(c_double) :: seconds
  end type emix_fit_result

  ! What an iteration callback receives, after every EM iteration's E-step (iteration 0: the
  ! initial parameters). Write the callback as
  !   subroutine on_iteration(info, user_data) bind(c)            (emix_options_set_iteration_callback)
  !   integer(c_int) function keep_going(info, user_data) bind(c) (..._control: nonzero stops the fit)
  ! with type(emix_iteration_info), intent(in) :: info and type(c_ptr), value :: user_data, and
  ! pass c_funloc(on_iteration).
  type, bind(c), public :: emix_iteration_info
    integer(c_int) :: init_run
    integer(c_int) :: iteration
    real(c_double) :: log_likelihood  ! total, sum_n w_n log p(x_n)
    real(c_double) :: mean_log_likelihood
    real(c_double) :: change  ! in mean log-likelihood since the previous iteration (NaN at 0)
    real(c_double) :: seconds
  end type emix_iteration_info

  public :: emix_error_message, emix_version_string, emix_status_text, emix_warning_text, &
    emix_gpu_unavailable_text

  interface
    function emix_last_error() bind(c, name="emix_last_error") result(message)
      import :: c_ptr
      type(c_ptr) :: message
    end function

    function emix_status_name(status) bind(c, name="emix_status_name") result(name)
      import :: c_int, c_ptr
      integer(c_int), value :: status
      type(c_ptr) :: name
    end function

    function emix_version() bind(c, name="emix_version") result(version)
      import :: c_ptr
      type(c_ptr) :: version
    end function

    function emix_gpu_available() bind(c, name="emix_gpu_available") result(available)
      import :: c_int
      integer(c_int) :: available
    end function

    function emix_gpu_unavailable_reason() bind(c, name="emix_gpu_unavailable_reason") &
      result(reason)
      import :: c_ptr
      type(c_ptr) :: reason
    end function

    ! ---- Options
    function emix_options_create(options) bind(c, name="emix_options_create") result(status)
      import :: c_int, c_ptr
      type(c_ptr), intent(out) :: options
      integer(c_int) :: status
    end function

    subroutine emix_options_destroy(options) bind(c, name="emix_options_destroy")
      import :: c_ptr
      type(c_ptr), value :: options
    end subroutine

    function emix_options_set_n_components(options, value) &
        bind(c, name="emix_options_set_n_components") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_family(options, value) bind(c, name="emix_options_set_family") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_covariance(options, value) &
        bind(c, name="emix_options_set_covariance") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_trials(options, value) bind(c, name="emix_options_set_trials") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_init(options, value) bind(c, name="emix_options_set_init") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_init_model(options, model) &
        bind(c, name="emix_options_set_init_model") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      type(c_ptr), value :: model
      integer(c_int) :: status
    end function

    function emix_options_set_kmeans_iter(options, value) &
        bind(c, name="emix_options_set_kmeans_iter") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_init_max_rows(options, value) &
        bind(c, name="emix_options_set_init_max_rows") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: options
      integer(c_int64_t), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_fixed_weights(options, value) &
        bind(c, name="emix_options_set_fixed_weights") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_n_init(options, value) bind(c, name="emix_options_set_n_init") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_max_iter(options, value) &
        bind(c, name="emix_options_set_max_iter") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_tol(options, value) bind(c, name="emix_options_set_tol") &
        result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: options
      real(c_double), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_reg_covar(options, value) &
        bind(c, name="emix_options_set_reg_covar") result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: options
      real(c_double), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_prob_epsilon(options, value) &
        bind(c, name="emix_options_set_prob_epsilon") result(status)
      import :: c_int, c_double, c_ptr
      type(c_ptr), value :: options
      real(c_double), value :: value
      integer(c_int) :: status
    end function

    ! The seed is a C uint64_t; Fortran has no unsigned type, so pass a non-negative value.
    function emix_options_set_seed(options, value) bind(c, name="emix_options_set_seed") &
        result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: options
      integer(c_int64_t), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_device(options, value) bind(c, name="emix_options_set_device") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_n_threads(options, value) &
        bind(c, name="emix_options_set_n_threads") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_block_rows(options, value) &
        bind(c, name="emix_options_set_block_rows") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: options
      integer(c_int64_t), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_chunk_rows(options, value) &
        bind(c, name="emix_options_set_chunk_rows") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: options
      integer(c_int64_t), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_device_memory_limit(options, value) &
        bind(c, name="emix_options_set_device_memory_limit") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: options
      integer(c_int64_t), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_allow_tf32(options, value) &
        bind(c, name="emix_options_set_allow_tf32") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_gpu_device(options, value) &
        bind(c, name="emix_options_set_gpu_device") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: options
      integer(c_int), value :: value
      integer(c_int) :: status
    end function

    function emix_options_set_iteration_callback(options, callback, user_data) &
        bind(c, name="emix_options_set_iteration_callback") result(status)
      import :: c_funptr, c_int, c_ptr
      type(c_ptr), value :: options
      type(c_funptr), value :: callback  ! c_funloc(on_iteration) or c_null_funptr
      type(c_ptr), value :: user_data
      integer(c_int) :: status
    end function

    function emix_options_set_iteration_control(options, control, user_data) &
        bind(c, name="emix_options_set_iteration_control") result(status)
      import :: c_funptr, c_int, c_ptr
      type(c_ptr), value :: options
      type(c_funptr), value :: control  ! nonzero from it stops the fit: EMIX_CANCELLED
      type(c_ptr), value :: user_data
      integer(c_int) :: status
    end function

    ! integer(c_int) function check(user_data) bind(c), type(c_ptr), value :: user_data: run
    ! about every 50 ms inside this thread's calls; nonzero stops the call (EMIX_CANCELLED).
    function emix_set_interrupt_check(check, user_data) &
        bind(c, name="emix_set_interrupt_check") result(status)
      import :: c_funptr, c_int, c_ptr
      type(c_funptr), value :: check  ! c_funloc(check) or c_null_funptr
      type(c_ptr), value :: user_data
      integer(c_int) :: status
    end function

    ! ---- Models
    function emix_model_create(family, covariance, n_components, n_features, trials, weights, &
        means, covariances, probabilities, model) bind(c, name="emix_model_create") result(status)
      import :: c_int, c_ptr
      integer(c_int), value :: family, covariance, n_components, n_features, trials
      type(c_ptr), value :: weights, means, covariances, probabilities  ! c_loc(...) or c_null_ptr
      type(c_ptr), intent(out) :: model
      integer(c_int) :: status
    end function

    subroutine emix_model_destroy(model) bind(c, name="emix_model_destroy")
      import :: c_ptr
      type(c_ptr), value :: model
    end subroutine

    ! The C functions, for a path already ending in c_null_char; emix_model_read and
    ! emix_model_write (below) also take a Fortran string.
    function emix_model_read_c_string(path, model) bind(c, name="emix_model_read") result(status)
      import :: c_char, c_int, c_ptr
      character(kind=c_char), dimension(*), intent(in) :: path
      type(c_ptr), intent(out) :: model
      integer(c_int) :: status
    end function

    function emix_model_write_c_string(model, path) bind(c, name="emix_model_write") &
        result(status)
      import :: c_char, c_int, c_ptr
      type(c_ptr), value :: model
      character(kind=c_char), dimension(*), intent(in) :: path
      integer(c_int) :: status
    end function

    function emix_model_shape(model, family, covariance, n_components, n_features, trials) &
        bind(c, name="emix_model_shape") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: model
      integer(c_int), intent(out) :: family, covariance, n_components, n_features, trials
      integer(c_int) :: status
    end function

    function emix_model_covariance_size(model, size) &
        bind(c, name="emix_model_covariance_size") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model
      integer(c_int64_t), intent(out) :: size
      integer(c_int) :: status
    end function

    function emix_model_get_weights(model, weights) bind(c, name="emix_model_get_weights") &
        result(status)
      import :: c_double, c_int, c_ptr
      type(c_ptr), value :: model
      real(c_double), intent(out) :: weights(*)
      integer(c_int) :: status
    end function

    function emix_model_get_means(model, means) bind(c, name="emix_model_get_means") &
        result(status)
      import :: c_double, c_int, c_ptr
      type(c_ptr), value :: model
      real(c_double), intent(out) :: means(*)
      integer(c_int) :: status
    end function

    function emix_model_get_covariances(model, covariances) &
        bind(c, name="emix_model_get_covariances") result(status)
      import :: c_double, c_int, c_ptr
      type(c_ptr), value :: model
      real(c_double), intent(out) :: covariances(*)
      integer(c_int) :: status
    end function

    function emix_model_get_probabilities(model, probabilities) &
        bind(c, name="emix_model_get_probabilities") result(status)
      import :: c_double, c_int, c_ptr
      type(c_ptr), value :: model
      real(c_double), intent(out) :: probabilities(*)
      integer(c_int) :: status
    end function

    function emix_model_n_parameters(model, n_parameters) &
        bind(c, name="emix_model_n_parameters") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model
      integer(c_int64_t), intent(out) :: n_parameters
      integer(c_int) :: status
    end function

    function emix_model_warning_count(model, count) bind(c, name="emix_model_warning_count") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: model
      integer(c_int), intent(out) :: count
      integer(c_int) :: status
    end function

    function emix_model_warning(model, index, text) bind(c, name="emix_model_warning") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: model
      integer(c_int), value :: index  ! 0-based
      type(c_ptr), intent(out) :: text  ! emix_warning_text() gives it as a Fortran string
      integer(c_int) :: status
    end function

    ! The rows [first_row, first_row + row_count) (0-based) that rank `rank` of `size` holds when
    ! total_rows are split evenly. Needs emix built with MPI.
    function emix_mpi_shard(total_rows, rank, size, first_row, row_count) &
        bind(c, name="emix_mpi_shard") result(status)
      import :: c_int, c_int64_t
      integer(c_int64_t), value :: total_rows
      integer(c_int), value :: rank, size
      integer(c_int64_t), intent(out) :: first_row, row_count
      integer(c_int) :: status
    end function

    ! ---- Fitting, prediction, scoring. x: c_loc of a real(c_double) or real(c_float) array.
    function emix_fit(options, x, rows, cols, dtype, memory, sample_weight, model, result) &
        bind(c, name="emix_fit") result(status)
      import :: c_int, c_int64_t, c_ptr, emix_fit_result
      type(c_ptr), value :: options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight  ! c_loc(w) or c_null_ptr
      type(c_ptr), intent(out) :: model
      type(emix_fit_result), intent(out) :: result
      integer(c_int) :: status
    end function

    ! comm: an MPI communicator's Fortran handle (mpi module INTEGER, or comm%MPI_VAL).
    ! Needs emix built with MPI.
    function emix_fit_mpi_f(comm, options, x, local_rows, cols, dtype, memory, &
        local_sample_weight, model, result) bind(c, name="emix_fit_mpi_f") result(status)
      import :: c_int, c_int64_t, c_ptr, emix_fit_result
      integer(c_int), value :: comm
      type(c_ptr), value :: options, x
      integer(c_int64_t), value :: local_rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: local_sample_weight
      type(c_ptr), intent(out) :: model
      type(emix_fit_result), intent(out) :: result
      integer(c_int) :: status
    end function

    function emix_predict(model, options, x, rows, cols, dtype, memory, labels) &
        bind(c, name="emix_predict") result(status)
      import :: c_int, c_int32_t, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      integer(c_int32_t), intent(out) :: labels(*)  ! 0-based component numbers
      integer(c_int) :: status
    end function

    function emix_predict_proba(model, options, x, rows, cols, dtype, memory, resp) &
        bind(c, name="emix_predict_proba") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      real(c_double), intent(out) :: resp(*)
      integer(c_int) :: status
    end function

    function emix_score_samples(model, options, x, rows, cols, dtype, memory, log_prob) &
        bind(c, name="emix_score_samples") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      real(c_double), intent(out) :: log_prob(*)
      integer(c_int) :: status
    end function

    function emix_score(model, options, x, rows, cols, dtype, memory, sample_weight, score) &
        bind(c, name="emix_score") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight
      real(c_double), intent(out) :: score
      integer(c_int) :: status
    end function

    function emix_bic(model, options, x, rows, cols, dtype, memory, bic) &
        bind(c, name="emix_bic") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      real(c_double), intent(out) :: bic
      integer(c_int) :: status
    end function

    function emix_aic(model, options, x, rows, cols, dtype, memory, aic) &
        bind(c, name="emix_aic") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      real(c_double), intent(out) :: aic
      integer(c_int) :: status
    end function

    ! As emix_bic / emix_aic, each row counted by its weight (sample_weight: c_loc(w) or
    ! c_null_ptr).
    function emix_bic_weighted(model, options, x, rows, cols, dtype, memory, sample_weight, &
        bic) bind(c, name="emix_bic_weighted") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight
      real(c_double), intent(out) :: bic
      integer(c_int) :: status
    end function

    function emix_aic_weighted(model, options, x, rows, cols, dtype, memory, sample_weight, &
        aic) bind(c, name="emix_aic_weighted") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight
      real(c_double), intent(out) :: aic
      integer(c_int) :: status
    end function

    ! The statistics API: EM as map (accumulate) / reduce (merge) / M-step (maximize), for a
    ! code that holds its data in pieces (out of core, or over its own ranks).
    function emix_accumulate(model, options, x, rows, cols, dtype, memory, sample_weight, &
        statistics) bind(c, name="emix_accumulate") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options, x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight  ! c_loc(w) or c_null_ptr
      type(c_ptr), intent(out) :: statistics
      integer(c_int) :: status
    end function

    subroutine emix_statistics_destroy(statistics) bind(c, name="emix_statistics_destroy")
      import :: c_ptr
      type(c_ptr), value :: statistics
    end subroutine

    function emix_statistics_merge(into, other) bind(c, name="emix_statistics_merge") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: into, other
      integer(c_int) :: status
    end function

    function emix_statistics_totals(statistics, log_likelihood, weight_sum) &
        bind(c, name="emix_statistics_totals") result(status)
      import :: c_double, c_int, c_ptr
      type(c_ptr), value :: statistics
      real(c_double), intent(out) :: log_likelihood, weight_sum
      integer(c_int) :: status
    end function

    function emix_statistics_entropy(statistics, entropy) &
        bind(c, name="emix_statistics_entropy") result(status)
      import :: c_double, c_int, c_ptr
      type(c_ptr), value :: statistics
      real(c_double), intent(out) :: entropy
      integer(c_int) :: status
    end function

    ! buffer: c_null_ptr to learn the size, else c_loc of `capacity` bytes.
    function emix_statistics_serialize(statistics, buffer, capacity, size) &
        bind(c, name="emix_statistics_serialize") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: statistics, buffer
      integer(c_int64_t), value :: capacity
      integer(c_int64_t), intent(out) :: size
      integer(c_int) :: status
    end function

    function emix_statistics_deserialize(bytes, size, statistics) &
        bind(c, name="emix_statistics_deserialize") result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: bytes
      integer(c_int64_t), value :: size
      type(c_ptr), intent(out) :: statistics
      integer(c_int) :: status
    end function

    function emix_maximize(model, statistics, options, next) bind(c, name="emix_maximize") &
        result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: model, statistics, options  ! options may be c_null_ptr
      type(c_ptr), intent(out) :: next
      integer(c_int) :: status
    end function

    ! lost = 1 where the statistics' move to next's means rounded away digits of its
    ! covariances; the exact step then accumulates the same rows about next's means
    ! (emix_accumulate_about, centres(D, K) as emix_model_get_means gives them).
    function emix_scatter_lost_digits(next, statistics, lost) &
        bind(c, name="emix_scatter_lost_digits") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: next, statistics
      integer(c_int), intent(out) :: lost
      integer(c_int) :: status
    end function

    function emix_accumulate_about(model, options, centres, x, rows, cols, dtype, memory, &
        sample_weight, statistics) bind(c, name="emix_accumulate_about") result(status)
      import :: c_double, c_int, c_int64_t, c_ptr
      type(c_ptr), value :: model, options
      real(c_double), intent(in) :: centres(*)
      type(c_ptr), value :: x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight
      type(c_ptr), intent(out) :: statistics
      integer(c_int) :: status
    end function

    ! ---- Model selection: a grid of K x covariance types (emix.h, "Model selection").
    ! n_components(n_k); covariances(n_covariances), or c_null_ptr-like: pass an empty array
    ! and 0 for all four (and for the Bernoulli and binomial families).
    function emix_select(options, n_components, n_k, covariances, n_covariances, criterion, x, &
        rows, cols, dtype, memory, sample_weight, selection) bind(c, name="emix_select") &
        result(status)
      import :: c_int, c_int64_t, c_ptr
      type(c_ptr), value :: options
      integer(c_int), intent(in) :: n_components(*), covariances(*)
      integer(c_int), value :: n_k, n_covariances, criterion
      type(c_ptr), value :: x
      integer(c_int64_t), value :: rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: sample_weight  ! c_loc(w) or c_null_ptr
      type(c_ptr), intent(out) :: selection
      integer(c_int) :: status
    end function

    ! comm: an MPI communicator's Fortran handle. Needs emix built with MPI.
    function emix_select_mpi_f(comm, options, n_components, n_k, covariances, n_covariances, &
        criterion, x, local_rows, cols, dtype, memory, local_sample_weight, selection) &
        bind(c, name="emix_select_mpi_f") result(status)
      import :: c_int, c_int64_t, c_ptr
      integer(c_int), value :: comm
      type(c_ptr), value :: options
      integer(c_int), intent(in) :: n_components(*), covariances(*)
      integer(c_int), value :: n_k, n_covariances, criterion
      type(c_ptr), value :: x
      integer(c_int64_t), value :: local_rows, cols
      integer(c_int), value :: dtype, memory
      type(c_ptr), value :: local_sample_weight
      type(c_ptr), intent(out) :: selection
      integer(c_int) :: status
    end function

    subroutine emix_selection_destroy(selection) bind(c, name="emix_selection_destroy")
      import :: c_ptr
      type(c_ptr), value :: selection
    end subroutine

    ! emix_selection_summary below calls it: optional arguments of a bind(c) interface need
    ! Fortran 2018, which gfortran -std=f2008 refuses.
    function emix_selection_summary_c(selection, n_candidates, best, passes) &
        bind(c, name="emix_selection_summary") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: selection, n_candidates, best, passes
      integer(c_int) :: status
    end function

    function emix_selection_candidate(selection, index, candidate) &
        bind(c, name="emix_selection_candidate") result(status)
      import :: c_int, c_ptr, emix_candidate
      type(c_ptr), value :: selection
      integer(c_int), value :: index  ! 0-based
      type(emix_candidate), intent(out) :: candidate
      integer(c_int) :: status
    end function

    ! Candidate index's model (a new handle to destroy), as emix_fit returns it.
    function emix_selection_model(selection, index, model) &
        bind(c, name="emix_selection_model") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: selection
      integer(c_int), value :: index
      type(c_ptr), intent(out) :: model
      integer(c_int) :: status
    end function

    function emix_selection_warning(selection, index, warning, text) &
        bind(c, name="emix_selection_warning") result(status)
      import :: c_int, c_ptr
      type(c_ptr), value :: selection
      integer(c_int), value :: index, warning
      type(c_ptr), intent(out) :: text
      integer(c_int) :: status
    end function
  end interface

  ! A model file's path as a Fortran string: trailing blanks trimmed (a fixed-length variable's
  ! padding), c_null_char added (one already there ends the path as before).
  interface emix_model_read
    module procedure emix_model_read_text
    procedure emix_model_read_c_string
  end interface emix_model_read
  interface emix_model_write
    module procedure emix_model_write_text
    procedure emix_model_write_c_string
  end interface emix_model_write

  public :: emix_gpu_available, emix_options_create, emix_options_destroy, &
    emix_options_set_n_components, emix_options_set_family, emix_options_set_covariance, &
    emix_options_set_trials, emix_options_set_init, emix_options_set_init_model, &
    emix_options_set_kmeans_iter, emix_options_set_init_max_rows, &
    emix_options_set_fixed_weights, emix_options_set_n_init, emix_options_set_max_iter, &
    emix_options_set_tol, emix_options_set_reg_covar, emix_options_set_prob_epsilon, &
    emix_options_set_seed, emix_options_set_device, emix_options_set_n_threads, &
    emix_options_set_block_rows, emix_options_set_chunk_rows, &
    emix_options_set_device_memory_limit, emix_options_set_allow_tf32, &
    emix_options_set_gpu_device, emix_options_set_iteration_callback, &
    emix_options_set_iteration_control, emix_set_interrupt_check, emix_model_create, emix_model_destroy, emix_model_read, &
    emix_model_write, emix_model_shape, emix_model_covariance_size, emix_model_get_weights, &
    emix_model_get_means, emix_model_get_covariances, emix_model_get_probabilities, &
    emix_model_n_parameters, emix_model_warning_count, emix_model_warning, emix_fit, &
    emix_fit_mpi_f, emix_mpi_shard, emix_status_name, &
    emix_predict, emix_predict_proba, emix_score_samples, emix_score, emix_bic, emix_aic, &
    emix_bic_weighted, emix_aic_weighted, emix_accumulate, emix_accumulate_about, &
    emix_scatter_lost_digits, emix_statistics_destroy, emix_statistics_merge, &
    emix_statistics_totals, emix_statistics_entropy, emix_statistics_serialize, emix_statistics_deserialize, &
    emix_maximize, emix_select, emix_select_mpi_f, emix_selection_destroy, &
    emix_selection_summary, emix_selection_candidate, emix_selection_model, &
    emix_selection_warning, emix_selection_warning_text

contains

  function emix_model_read_text(path, model) result(status)
    character(len=*), intent(in) :: path
    type(c_ptr), intent(out) :: model
    integer(c_int) :: status
    status = emix_model_read_c_string(trim(path) // c_null_char, model)
  end function emix_model_read_text

  function emix_model_write_text(model, path) result(status)
    type(c_ptr), intent(in) :: model
    character(len=*), intent(in) :: path
    integer(c_int) :: status
    status = emix_model_write_c_string(model, trim(path) // c_null_char)
  end function emix_model_write_text

  ! A C string (owned by emix) as a Fortran string.
  function c_string(p) result(text)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: text
    character(kind=c_char), pointer :: chars(:)
    integer :: n
    interface
      function strlen(s) bind(c, name="strlen") result(length)
        import :: c_ptr, c_size_t
        type(c_ptr), value :: s
        integer(c_size_t) :: length
      end function
    end interface
    if (.not. c_associated(p)) then
      text = ""
      return
    end if
    n = int(strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate (character(len=n) :: text)
    text = transfer(chars(1:n), text)
  end function c_string

  ! The message of this thread's last error.
  function emix_error_message() result(text)
    character(len=:), allocatable :: text
    text = c_string(emix_last_error())
  end function emix_error_message

  ! The name of a status code, for example "EMIX_INVALID_ARGUMENT".
  function emix_status_text(status) result(text)
    integer(c_int), intent(in) :: status
    character(len=:), allocatable :: text
    text = c_string(emix_status_name(status))
  end function emix_status_text

  ! The fit's i-th warning (0-based), or "" when there is none.
  function emix_warning_text(model, index) result(text)
    type(c_ptr), intent(in) :: model
    integer(c_int), intent(in) :: index
    character(len=:), allocatable :: text
    type(c_ptr) :: p
    if (emix_model_warning(model, index, p) /= EMIX_OK) then
      text = ""
    else
      text = c_string(p)
    end if
  end function emix_warning_text

  ! Warning `warning` (0-based) of candidate `index` of a selection, or "" when there is none:
  ! a failed candidate's last warning says why it failed.
  function emix_selection_warning_text(selection, index, warning) result(text)
    type(c_ptr), intent(in) :: selection
    integer(c_int), intent(in) :: index, warning
    character(len=:), allocatable :: text
    type(c_ptr) :: p
    if (emix_selection_warning(selection, index, warning, p) /= EMIX_OK) then
      text = ""
    else
      text = c_string(p)
    end if
  end function emix_selection_warning_text

  ! The number of candidates, the chosen one's index (0-based) and the passes over the data;
  ! each output optional.
  function emix_selection_summary(selection, n_candidates, best, passes) result(status)
    type(c_ptr), intent(in) :: selection
    integer(c_int), intent(out), optional, target :: n_candidates, best, passes
    integer(c_int) :: status
    type(c_ptr) :: n_candidates_p, best_p, passes_p
    n_candidates_p = c_null_ptr
    best_p = c_null_ptr
    passes_p = c_null_ptr
    if (present(n_candidates)) n_candidates_p = c_loc(n_candidates)
    if (present(best)) best_p = c_loc(best)
    if (present(passes)) passes_p = c_loc(passes)
    status = emix_selection_summary_c(selection, n_candidates_p, best_p, passes_p)
  end function emix_selection_summary

  function emix_version_string() result(text)
    character(len=:), allocatable :: text
    text = c_string(emix_version())
  end function emix_version_string

  ! Why emix_gpu_available() is 0, or "" when it is 1.
  function emix_gpu_unavailable_text() result(text)
    character(len=:), allocatable :: text
    text = c_string(emix_gpu_unavailable_reason())
  end function emix_gpu_unavailable_text

end module emix
